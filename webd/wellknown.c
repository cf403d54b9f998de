/*
 * wellknown.c - the fixed answers of webd: Thunderbird's autoconfig
 * document (/.well-known/autoconfig/mail/config-v1.1.xml and
 * /mail/config-v1.1.xml?emailaddress=..., from the running config through
 * common/autoconfig.c), the one script (the teachers' live view) and the
 * one style sheet, both compiled in, and / (to the mailbox or the login).
 * Never: reads a file named by a URL; the script builds the DOM with
 * textContent only.
 */
#include <string.h>

#include "autoconfig.h"
#include "webd.h"

/* Polls /api/sessions for sessions newer than the newest shown, with the
 * page's own filters, and puts them on top of the table. */
static const char live_js[] =
"'use strict';\n"
"(function () {\n"
"  var table = document.getElementById('sessions');\n"
"  if (!table) { return; }\n"
"  var body = table.tBodies[0], seen = {}, since = 0;\n"
"  var status = document.getElementById('live-status');\n"
"  Array.prototype.forEach.call(body.rows, function (tr) {\n"
"    seen[tr.cells[1].textContent] = true;\n"
"  });\n"
"  function cell(tr, text, href) {\n"
"    var td = document.createElement('td');\n"
"    if (href) {\n"
"      var a = document.createElement('a');\n"
"      a.href = href; a.textContent = text; a.className = 'sid'; td.appendChild(a);\n"
"    } else { td.textContent = text; }\n"
"    tr.appendChild(td);\n"
"  }\n"
"  function when(t) { return new Date(t * 1000).toISOString().replace('T', ' ').slice(0, 19) + ' UTC'; }\n"
"  function poll() {\n"
"    var q = new URLSearchParams(window.location.search);\n"
"    if (since > 0) { q.set('since', String(since)); }\n"
"    fetch('/api/sessions?' + q.toString(), { credentials: 'same-origin' })\n"
"      .then(function (r) { return r.json(); })\n"
"      .then(function (data) {\n"
"        var list = data.sessions.slice().reverse();\n"
"        list.forEach(function (s) {\n"
"          if (s.started > since) { since = s.started; }\n"
"          if (seen[s.id]) { return; }\n"
"          seen[s.id] = true;\n"
"          var tr = document.createElement('tr');\n"
"          tr.className = 'new';\n"
"          cell(tr, when(s.started));\n"
"          cell(tr, s.id, '/sessions/' + encodeURIComponent(s.id));\n"
"          cell(tr, s.proto); cell(tr, s.client); cell(tr, s.user);\n"
"          cell(tr, s.ended === 0 ? '(open)' : s.outcome);\n"
"          body.insertBefore(tr, body.firstChild);\n"
"        });\n"
"        if (status) { status.textContent = 'Updated ' + new Date().toISOString(); }\n"
"      })\n"
"      .catch(function () { if (status) { status.textContent = 'Cannot reach the server'; } })\n"
"      .then(function () { window.setTimeout(poll, 2000); });\n"
"  }\n"
"  poll();\n"
"}());\n";

static const char style_css[] =
"body { font-family: sans-serif; margin: 0; color: #222; }\n"
"header { background: #234; color: #fff; padding: .5em 1em; display: flex; gap: 1.5em;"
" align-items: center; }\n"
"header a { color: #fff; margin-right: 1em; }\n"
".brand { font-weight: bold; }\n"
".logout { margin-left: auto; }\n"
"main { padding: 1em; }\n"
"table.list { border-collapse: collapse; width: 100%; }\n"
"table.list th, table.list td { border-bottom: 1px solid #ddd; padding: .3em .6em;"
" text-align: left; }\n"
"td.num { text-align: right; }\n"
"table.headers th { text-align: right; padding-right: 1em; vertical-align: top; }\n"
"pre { background: #f6f6f6; padding: .6em; overflow-x: auto; white-space: pre-wrap; }\n"
".transcript { font-family: monospace; border: 1px solid #ccc; }\n"
".line { white-space: pre-wrap; padding: .1em .5em; }\n"
".line.c { background: #e8f0ff; color: #023; }\n"
".line.s { background: #f0fff0; color: #030; }\n"
".line .ts { color: #888; }\n"
"tr.new { background: #ffd; }\n"
".error { color: #a00; }\n"
"form.login label, form.filters label { display: block; margin: .4em 0; }\n";

static void
send_static(struct webreq *r, const char *type, const char *text)
{
	struct buf b;

	buf_init(&b, WEBD_PAGE_MAX);
	buf_puts(&b, text);
	webd_send(r, 200, type, &b);
	buf_free(&b);
}

void
wellknown_script(struct webreq *r)
{
	send_static(r, "text/javascript; charset=utf-8", live_js);
}

void
wellknown_style(struct webreq *r)
{
	send_static(r, "text/css; charset=utf-8", style_css);
}

void
wellknown_index(struct webreq *r)
{
	webd_redirect(r, r->account[0] != '\0' ? "/mailbox" : "/login");
}

void
wellknown_autoconfig(struct webreq *r)
{
	struct autoconfig ac;
	struct buf b;

	if (autoconfig_from_config(r->w->cfg, webd_query(r, "emailaddress"), &ac) == -1) {
		webd_error(r, 400, "emailaddress is not an address");
		return;
	}
	buf_init(&b, WEBD_PAGE_MAX);
	if (autoconfig_xml(&ac, &b) == -1) {
		buf_free(&b);
		webd_error(r, 503, "Out of memory");
		return;
	}
	webd_send(r, 200, "application/xml; charset=utf-8", &b);
	buf_free(&b);
}
