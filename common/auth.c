/*
 * auth.c - passwords and SASL decoding.
 *
 * Hashes come from libxcrypt: crypt_gensalt_rn(NULL, ...) picks the
 * strongest default method (yescrypt "$y$" on Debian 12) with a fresh
 * random salt, crypt_rn() hashes. Verification hashes the candidate with the
 * stored hash as setting and compares in constant time. Unknown users are
 * checked against a dummy hash so that timing does not reveal them.
 * SASL PLAIN (RFC 4616 2) and LOGIN fields are decoded with the strict
 * base64 of b64.c (RFC 4954 4: invalid base64 must be refused).
 * Never: log, store or copy a plaintext password anywhere but the caller's
 * buffers; compare hashes with strcmp.
 *
 * yescrypt's scratch memory: libxcrypt maps a fresh anonymous area for every
 * hash (16 MB with Debian's default cost) and unmaps it after, so each hash
 * takes 4,096 page faults and zeroes 4,096 pages: about 40% of a 14 ms hash
 * is kernel time. The mmap() below stands in for the C library's in the
 * whole program (the executable's definition comes first in symbol lookup,
 * libxcrypt's call included). It passes every call to the kernel unchanged
 * and adds one thing: while this thread is inside crypt_rn() (the
 * thread-local flag hashing), an anonymous mapping of 2 MB or more is
 * advised MADV_HUGEPAGE, so the kernel backs it with huge pages where it
 * can: 8 faults instead of 4,096, and a hash of about 9 ms instead of 14.
 * The work of the hash (its cost parameters, the memory it fills) is
 * unchanged. Where transparent huge pages are "never", or none is free, the
 * advice does nothing and the kernel uses small pages as before; on a host
 * whose memory is fragmented, the kernel may compact memory for them first
 * (defrag "madvise"), which costs the hash time, on a password thread, never
 * on an event loop. Being the program's mmap(), it also stands in front of
 * a sanitizer's: ASan's check of writable and executable maps does not see
 * maps made here (the build's sanitizers need nothing else of it).
 */
#include <crypt.h>
#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/random.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "auth.h"
#include "b64.h"

/* The smallest mapping worth a huge page: one huge page on x86-64. */
#define AUTH_SCRATCH_HUGE	(2u << 20)

/* volatile: crypt.h declares crypt_rn() a leaf (calling nothing back in
 * this file), so the compiler would drop a plain store before the call. */
static __thread volatile bool hashing;
static unsigned long scratch_advised;	/* for tests: auth_scratch_advised() */

/* Only where the mmap system call takes the six arguments of mmap()
 * (elsewhere, as on 32-bit x86 or s390x, it takes a structure): there the
 * C library's mmap() stays, and hashes use small pages. */
#if defined(__linux__) && (defined(__x86_64__) || defined(__aarch64__)) && !defined(__ILP32__)
#define AUTH_SCRATCH_HOOK	1

void *
mmap(void *addr, size_t len, int prot, int flags, int fd, off_t off)
{
	void *p;
	int saved;

	/* The raw system call is what the C library's mmap() makes here:
	 * a failure is MAP_FAILED with errno set. syscall() reads longs. */
	p = (void *)syscall(SYS_mmap, addr, len, (long)prot, (long)flags, (long)fd, (long)off);
	if (hashing && p != MAP_FAILED && (flags & MAP_ANONYMOUS) &&
	    len >= AUTH_SCRATCH_HUGE) {
		/* A kernel without huge pages says EINVAL: the map stands,
		 * and a successful mmap() leaves errno alone. */
		saved = errno;
		if (madvise(p, len, MADV_HUGEPAGE) == 0)
			__atomic_add_fetch(&scratch_advised, 1, __ATOMIC_RELAXED);
		errno = saved;
	}
	return p;
}
#else
#define AUTH_SCRATCH_HOOK	0
#endif

bool
auth_scratch_hooked(void)
{
	return AUTH_SCRATCH_HOOK;
}

unsigned long
auth_scratch_advised(void)
{
	return __atomic_load_n(&scratch_advised, __ATOMIC_RELAXED);
}

/* crypt_data is large (tens of KB): keep it on the heap, wipe it after. */
static char *
auth_crypt(const char *password, const char *setting, struct crypt_data **cdp)
{
	char *h;

	if ((*cdp = calloc(1, sizeof(**cdp))) == NULL)
		return NULL;
	hashing = true;
	h = crypt_rn(password, setting, *cdp, (int)sizeof(**cdp));
	hashing = false;
	/* Failures return NULL or a string starting with '*'. */
	if (h == NULL || h[0] == '*')
		return NULL;
	return h;
}

static void
auth_crypt_free(struct crypt_data **cdp)
{
	if (*cdp != NULL) {
		explicit_bzero(*cdp, sizeof(**cdp));
		free(*cdp);
		*cdp = NULL;
	}
}

int
auth_hash_password(const char *password, char *hash_r, size_t hashlen)
{
	char salt[CRYPT_GENSALT_OUTPUT_SIZE];
	struct crypt_data *cd = NULL;
	const char *h;
	int ret = -1;

	if (hashlen > 0)
		hash_r[0] = '\0';
	if (password == NULL || crypt_gensalt_rn(NULL, 0, NULL, 0, salt, sizeof(salt)) == NULL)
		return -1;
	if ((h = auth_crypt(password, salt, &cd)) != NULL &&
	    (size_t)snprintf(hash_r, hashlen, "%s", h) < hashlen)
		ret = 0;
	else if (hashlen > 0)
		hash_r[0] = '\0';
	auth_crypt_free(&cd);
	return ret;
}

int
auth_check_password(const char *password, const char *hash)
{
	struct crypt_data *cd = NULL;
	const char *h;
	size_t n, i;
	unsigned char diff;
	int ok = 0;

	if (password == NULL || hash == NULL || hash[0] == '\0' || hash[0] == '*' ||
	    hash[0] == '!')
		return 0;
	errno = 0;
	if ((h = auth_crypt(password, hash, &cd)) != NULL) {
		n = strlen(hash);
		/* The length of a hash is not secret; its bytes are. */
		diff = strlen(h) != n;
		for (i = 0; i < n && h[i] != '\0'; i++)
			diff |= (unsigned char)(h[i] ^ hash[i]);
		ok = diff == 0 && i == n;
	} else if (errno == ENOMEM || (crypt_checksalt(hash) != CRYPT_SALT_INVALID &&
	    crypt_checksalt(hash) != CRYPT_SALT_METHOD_DISABLED)) {
		/* A hash crypt(3) knows, that it failed to compute: out of
		 * memory (yescrypt takes megabytes; libxcrypt says EINVAL). */
		ok = -1;
	}
	auth_crypt_free(&cd);
	return ok;
}

bool
auth_verify_password(const char *password, const char *hash)
{
	return auth_check_password(password, hash) == 1;
}

static char dummy_hash[AUTH_HASH_MAX];
static pthread_once_t dummy_once = PTHREAD_ONCE_INIT;

static void
dummy_init(void)
{
	unsigned char rnd[24];
	char pw[sizeof(rnd) * 2 + 1];
	size_t i;

	if (getrandom(rnd, sizeof(rnd), 0) != (ssize_t)sizeof(rnd))
		memset(rnd, 0x5a, sizeof(rnd));
	for (i = 0; i < sizeof(rnd); i++)
		snprintf(pw + 2 * i, 3, "%02x", rnd[i]);
	if (auth_hash_password(pw, dummy_hash, sizeof(dummy_hash)) == -1)
		dummy_hash[0] = '\0';
	explicit_bzero(pw, sizeof(pw));
	explicit_bzero(rnd, sizeof(rnd));
}

const char *
auth_dummy_hash(void)
{
	pthread_once(&dummy_once, dummy_init);
	/* If hashing failed, a syntactically valid setting that matches
	 * nothing still costs a crypt() call. */
	return dummy_hash[0] ? dummy_hash : "$y$j9T$AAAAAAAAAAAAAAAAAAAAA.$"
	    "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA";
}

/* Copy field [p, p+n) to dst (fieldlen bytes) as a C string. */
static int
copy_field(const char *p, size_t n, char *dst, size_t fieldlen)
{
	if (n >= fieldlen)
		return -1;
	memcpy(dst, p, n);
	dst[n] = '\0';
	return 0;
}

int
auth_sasl_plain(const char *b64, char *authzid, char *user, char *pass,
    size_t fieldlen, char *err, size_t errlen)
{
	char buf[3 * AUTH_FIELD_MAX + 8];
	const char *p, *nul1, *nul2, *end;
	long n;
	int ret = -1;

	authzid[0] = user[0] = pass[0] = '\0';
	n = b64_decode_strict(b64, strlen(b64), buf, sizeof(buf));
	if (n < 0) {
		snprintf(err, errlen, "invalid base64 or response too long");
		return -1;
	}
	end = buf + n;
	/* message = [authzid] UTF8NUL authcid UTF8NUL passwd (RFC 4616 2) */
	if ((nul1 = memchr(buf, '\0', (size_t)n)) == NULL ||
	    (nul2 = memchr(nul1 + 1, '\0', (size_t)(end - nul1 - 1))) == NULL) {
		snprintf(err, errlen, "PLAIN response needs authzid NUL authcid NUL password");
		goto out;
	}
	if (memchr(nul2 + 1, '\0', (size_t)(end - nul2 - 1)) != NULL) {
		snprintf(err, errlen, "PLAIN response has more than two NULs");
		goto out;
	}
	p = buf;
	if (nul2 == nul1 + 1) {
		snprintf(err, errlen, "PLAIN response has an empty user name");
		goto out;
	}
	if (nul2 + 1 == end) {
		snprintf(err, errlen, "PLAIN response has an empty password");
		goto out;
	}
	if (copy_field(p, (size_t)(nul1 - p), authzid, fieldlen) == -1 ||
	    copy_field(nul1 + 1, (size_t)(nul2 - nul1 - 1), user, fieldlen) == -1 ||
	    copy_field(nul2 + 1, (size_t)(end - nul2 - 1), pass, fieldlen) == -1) {
		snprintf(err, errlen, "PLAIN response field too long");
		authzid[0] = user[0] = '\0';
		explicit_bzero(pass, fieldlen);
		goto out;
	}
	ret = 0;
out:
	explicit_bzero(buf, sizeof(buf));
	return ret;
}

int
auth_sasl_field(const char *b64, char *dst, size_t dstlen)
{
	long n;

	if (dstlen == 0)
		return -1;
	dst[0] = '\0';
	n = b64_decode_strict(b64, strlen(b64), dst, dstlen);
	/* Need room for the NUL; a field must not hold a NUL itself. */
	if (n < 0 || (size_t)n >= dstlen || memchr(dst, '\0', (size_t)n) != NULL) {
		explicit_bzero(dst, dstlen);
		return -1;
	}
	dst[n] = '\0';
	return 0;
}
