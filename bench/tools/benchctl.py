#!/usr/bin/env python3
"""Helpers for bench/run.sh (standard library only, any Python 3.8+).

Subcommands:
  spawn    start a server detached, wait for the first 200 on a URL, print
           {"pid": ..., "ready_ms": ...}: ms from spawn to the first 200
  token    POST /v3/auth/tokens with a password (optionally scoped), print the token
  appcred  create an application credential for a user, print {id, secret, token}
  rescope  POST /v3/auth/tokens with the token method, print the new token
  rss      VmRSS in MB of a process and all its descendants
  record   append one JSON result line (from wrk's BENCH_JSON output or a value)
  report   render the results file as the markdown table
"""

import argparse
import http.client
import json
import os
import platform
import subprocess
import sys
import time
import urllib.parse

# --------------------------------------------------------------------------- HTTP


def _conn(url, timeout=60):
    u = urllib.parse.urlsplit(url)
    return http.client.HTTPConnection(u.hostname, u.port or 80, timeout=timeout), u.path.rstrip("/")


def request(url, method, path, body=None, token=None, expect=(200, 201, 204), tries=5,
            extra_headers=None):
    """One request; retries 5xx and connection errors (SQLite under Keystone can
    answer 500 'database is locked' while two workers write)."""
    last = None
    for attempt in range(tries):
        conn, base = _conn(url)
        headers = {"Content-Type": "application/json"}
        if token:
            headers["X-Auth-Token"] = token
        headers.update(extra_headers or {})
        try:
            conn.request(method, base + path, body=json.dumps(body) if body is not None else None, headers=headers)
            resp = conn.getresponse()
            data = resp.read()
        except (OSError, http.client.HTTPException) as e:
            last = f"{method} {path}: {e}"
            time.sleep(0.2 * (attempt + 1))
            continue
        finally:
            conn.close()
        if resp.status in expect:
            return resp, (json.loads(data) if data else None)
        last = f"{method} {path}: HTTP {resp.status} {data[:300]!r}"
        if resp.status < 500:
            break
        time.sleep(0.2 * (attempt + 1))
    raise RuntimeError(last)


def password_token(url, user, password, project=None, domain="default"):
    auth = {
        "identity": {
            "methods": ["password"],
            "password": {"user": {"name": user, "domain": {"id": domain}, "password": password}},
        }
    }
    if project:
        auth["scope"] = {"project": {"name": project, "domain": {"id": domain}}}
    resp, _ = request(url, "POST", "/v3/auth/tokens?nocatalog", {"auth": auth}, expect=(201,))
    return resp.getheader("X-Subject-Token")


def cmd_token(a):
    print(password_token(a.url, a.user, a.password, a.project))


def cmd_trust_token(a):
    """A trust from the trustor (its project-scoped token) to the trustee, and the
    trustee's trust-scoped token: the subject of validate-trust."""
    trustor_token = password_token(a.url, a.trustor, a.password, a.project)
    _, users = request(a.url, "GET", f"/v3/users?name={a.trustee}", token=a.admin_token, expect=(200,))
    _, trustors = request(a.url, "GET", f"/v3/users?name={a.trustor}", token=a.admin_token, expect=(200,))
    _, projects = request(a.url, "GET", f"/v3/projects?name={a.project}", token=a.admin_token, expect=(200,))
    trust = {
        "trustor_user_id": trustors["users"][0]["id"],
        "trustee_user_id": users["users"][0]["id"],
        "project_id": projects["projects"][0]["id"],
        "impersonation": True,
        "roles": [{"name": a.role}],
    }
    _, created = request(a.url, "POST", "/v3/OS-TRUST/trusts", {"trust": trust}, token=trustor_token, expect=(201,))
    auth = {
        "identity": {
            "methods": ["password"],
            "password": {"user": {"name": a.trustee, "domain": {"id": "default"}, "password": a.trustee_password}},
        },
        "scope": {"OS-TRUST:trust": {"id": created["trust"]["id"]}},
    }
    resp, _ = request(a.url, "POST", "/v3/auth/tokens?nocatalog", {"auth": auth}, expect=(201,))
    print(resp.getheader("X-Subject-Token"))
def cmd_appcred(a):
    """An application credential of `user` on `project` (created with the user's own
    project token), and a token issued with it: one JSON line {id, secret, token}."""
    token = password_token(a.url, a.user, a.password, a.project)
    _, me = request(a.url, "GET", "/v3/auth/tokens?nocatalog", None, token=token,
                    expect=(200,), extra_headers={"X-Subject-Token": token})
    user_id = me["token"]["user"]["id"]
    _, created = request(a.url, "POST", f"/v3/users/{user_id}/application_credentials",
                         {"application_credential": {"name": f"bench-{int(time.time())}"}},
                         token=token, expect=(201,))
    cred = created["application_credential"]
    auth = {"identity": {"methods": ["application_credential"], "application_credential": {
        "id": cred["id"], "secret": cred["secret"]}}}
    resp, _ = request(a.url, "POST", "/v3/auth/tokens?nocatalog", {"auth": auth}, expect=(201,))
    print(json.dumps({"id": cred["id"], "secret": cred["secret"],
                      "token": resp.getheader("X-Subject-Token")}))


def cmd_rescope(a):
    body = {
        "auth": {
            "identity": {"methods": ["token"], "token": {"id": a.token}},
            "scope": {"project": {"name": a.project, "domain": {"id": "default"}}},
        }
    }
    resp, _ = request(a.url, "POST", "/v3/auth/tokens?nocatalog", body, expect=(201,))
    print(resp.getheader("X-Subject-Token"))


# --------------------------------------------------------------------------- processes


def cmd_spawn(a):
    cmd = a.cmd[1:] if a.cmd and a.cmd[0] == "--" else a.cmd
    env = dict(os.environ)
    for kv in a.env or []:
        k, _, v = kv.partition("=")
        env[k] = v
    log = open(a.log, "ab")
    t0 = time.monotonic()
    proc = subprocess.Popen(
        cmd, stdin=subprocess.DEVNULL, stdout=log, stderr=log, cwd=a.cwd, env=env, start_new_session=True
    )
    deadline = t0 + a.timeout
    u = urllib.parse.urlsplit(a.url)
    while True:
        if proc.poll() is not None:
            print(json.dumps({"pid": proc.pid, "error": f"exited with {proc.returncode}"}))
            sys.exit(1)
        if time.monotonic() > deadline:
            print(json.dumps({"pid": proc.pid, "error": "not ready in time"}))
            sys.exit(1)
        try:
            c = http.client.HTTPConnection(u.hostname, u.port, timeout=2)
            c.request("GET", u.path or "/")
            status = c.getresponse().status
            c.close()
            if status == 200:
                break
        except (OSError, http.client.HTTPException):
            pass
        time.sleep(0.002)
    ready_ms = (time.monotonic() - t0) * 1000
    print(json.dumps({"pid": proc.pid, "ready_ms": round(ready_ms, 1)}))


def _children(pid):
    out = []
    try:
        with open(f"/proc/{pid}/task/{pid}/children") as f:
            kids = [int(x) for x in f.read().split()]
    except OSError:
        return out
    for k in kids:
        out.append(k)
        out.extend(_children(k))
    return out


def rss_mb(pid):
    total = 0
    for p in [pid] + _children(pid):
        try:
            with open(f"/proc/{p}/status") as f:
                for line in f:
                    if line.startswith("VmRSS:"):
                        total += int(line.split()[1])
        except OSError:
            pass
    return total / 1024


def cmd_rss(a):
    print(f"{rss_mb(a.pid):.1f}")


# --------------------------------------------------------------------------- results


def cmd_record(a):
    rec = {"side": a.side, "workload": a.workload}
    if a.conc is not None:
        rec["conc"] = a.conc
    if a.note:
        rec["note"] = a.note
    if a.wrk_output:
        found = None
        with open(a.wrk_output) as f:
            for line in f:
                if line.startswith("BENCH_JSON "):
                    found = json.loads(line[len("BENCH_JSON "):])
        if found is None:
            raise SystemExit(f"no BENCH_JSON line in {a.wrk_output}")
        rec.update(found)
    if a.rss_pid:
        rec["rss_mb"] = round(rss_mb(a.rss_pid), 1)
    if a.value is not None:
        rec["value"] = a.value
        rec["unit"] = a.unit
    with open(a.results, "a") as f:
        f.write(json.dumps(rec) + "\n")
    errors = sum(v for k, v in rec.items() if k.startswith("errors_"))
    if "rps" in rec:
        msg = f"{a.side:>8} {a.workload:<28} {rec['rps']:>10.1f} req/s  p50 {rec['p50_ms']:.2f} ms  p99 {rec['p99_ms']:.2f} ms"
        if errors:
            msg += f"  ERRORS {errors}"
        if rec.get("exhausted_threads"):
            msg += "  TOKENS RAN OUT (rate understated: raise BENCH_COLD_TOKENS)"
        if "rss_mb" in rec:
            msg += f"  rss {rec['rss_mb']} MB"
    else:
        msg = f"{a.side:>8} {a.workload:<28} {rec['value']} {rec['unit']}"
    print(msg, file=sys.stderr)


ROWS = [
    ("discovery", "GET /v3, c=64: the HTTP ceiling"),
    ("validate-hot", "GET /v3/auth/tokens, one subject, with catalog, c=64"),
    ("validate-many", "GET /v3/auth/tokens, 10,000 subjects in rotation, c=64"),
    ("validate-cold", "GET /v3/auth/tokens, every subject token seen once (cache miss), c=64"),
    ("validate-nocatalog", "GET /v3/auth/tokens?nocatalog, one subject, c=64"),
    ("validate-trust", "GET /v3/auth/tokens, one trust-scoped subject (impersonating), with catalog, c=64"),
    ("validate-appcred", "validate-hot with an application-credential subject token, c=64"),
    ("rescope", "POST token (unscoped) -> project, c=16"),
    ("password", "POST password + project scope, c=16"),
    ("appcred-login", "POST application_credential (id + secret, argon2id), c=16"),
    ("mixed-logins", "validate-hot p99 while 32 password logins run"),
    ("mixed-logins/password", "the 32 concurrent password logins during mixed-logins"),
    ("validate-hot@0-events", "validate-hot again at the end, revocation table empty"),
    ("validate-hot@100k-events", "then with 100,000 events revoked over the last day"),
    ("validate-hot@100k-burst", "then with 100,000 more revoked this second (re-read each refresh)"),
    ("idle-rss", "resident memory after start, before load"),
    ("rss-after-load", "resident memory after every workload"),
    ("ready-time", "ms from process spawn to the first 200 on GET /v3"),
]


def fmt_num(v, digits=1):
    if v is None:
        return "–"
    if v >= 100:
        return f"{v:,.0f}"
    return f"{v:.{digits}f}"


def fmt_ms(v):
    if v is None:
        return "–"
    if v >= 100:
        return f"{v:,.0f}"
    if v >= 10:
        return f"{v:.1f}"
    return f"{v:.2f}"


def fmt_ratio(v):
    if v is None:
        return "–"
    if v >= 10:
        return f"{v:,.0f}x"
    if v >= 1:
        return f"{v:.1f}x"
    return f"{v:.2f}x"


def fmt_pct(v):
    return "–" if v is None else f"{v * 100:.1f}%"


def cmd_report(a):
    recs = {}
    meta = {}
    with open(a.results) as f:
        for line in f:
            r = json.loads(line)
            if r.get("side") == "meta":
                meta[r["workload"]] = r.get("value")
                continue
            recs[(r["side"], r["workload"])] = r
    sides = ["rs"] + (["py"] if any(s == "py" for s, _ in recs) else [])
    has_base = any(s == "base" for s, _ in recs)
    has_before = any(s == "before" for s, _ in recs)

    def get(side, wl):
        return recs.get((side, wl))

    disc = get("rs", "discovery")
    lines = []
    head = ["workload", "c", "req/s", "p50 ms", "p99 ms", "vs discovery", "RSS after, MB"]
    if has_base:
        head += ["default-scale req/s", "vs default scale"]
    if has_before:
        head += ["before req/s", "before p99 ms", "now / before"]
    if "py" in sides:
        head += ["Keystone req/s", "Keystone p50 ms", "Keystone p99 ms", "us / Keystone"]
    lines.append("| " + " | ".join(head) + " |")
    lines.append("|" + "|".join(["---"] + ["---:"] * (len(head) - 1)) + "|")

    def load_cells(r):
        """req/s, p50, p99 of a wrk record; flags errors and empty runs."""
        if r["requests"] == 0:
            return ["0 (none completed)", "–", "–"]
        errs = sum(v for k, v in r.items() if k.startswith("errors_"))
        rps = fmt_num(r["rps"]) + (f" ({errs} errors!)" if errs else "")
        if r.get("exhausted_threads"):
            rps += " (tokens ran out!)"
        return [rps, fmt_ms(r["p50_ms"]), fmt_ms(r["p99_ms"])]

    for wl, _desc in ROWS:
        r = get("rs", wl)
        p = get("py", wl)
        b = get("base", wl) if has_base else None
        if r is None and p is None and b is None:
            continue
        cells = [wl]
        if r is not None and "rps" in r:
            vs = r["rps"] / disc["rps"] if disc and wl != "discovery" and not wl.startswith("mixed") else None
            cells += [str(r.get("conc", ""))] + load_cells(r) + [fmt_pct(vs), fmt_num(r.get("rss_mb"))]
        elif r is not None:
            cells += ["", f"{fmt_num(r['value'])} {r['unit']}", "", "", "", ""]
        else:
            cells += ["", "–", "–", "–", "–", "–"]
        if has_base:
            if b is not None and "rps" in b:
                cells += [fmt_num(b["rps"]) if b["requests"] else "0", fmt_pct(r["rps"] / b["rps"]) if r is not None and "rps" in r and b["rps"] else "–"]
            elif b is not None and "value" in b:
                cells += [f"{fmt_num(b['value'])} {b['unit']}", fmt_pct(r["value"] / b["value"]) if r is not None and b["value"] else "–"]
            else:
                cells += ["–", "–"]
        if has_before:
            o = get("before", wl)
            if o is not None and "rps" in o:
                ratio = r["rps"] / o["rps"] if r is not None and "rps" in r and o["rps"] else None
                cells += [fmt_num(o["rps"]) if o["requests"] else "0", fmt_ms(o["p99_ms"]), fmt_pct(ratio)]
            elif o is not None and "value" in o:
                ratio = r["value"] / o["value"] if r is not None and "value" in r and o["value"] else None
                cells += [f"{fmt_num(o['value'])} {o['unit']}", "", fmt_pct(ratio)]
            else:
                cells += ["–", "–", "–"]
        if "py" in sides:
            if p is not None and "rps" in p:
                ratio = r["rps"] / p["rps"] if r is not None and "rps" in r and p["rps"] else None
                cells += load_cells(p) + [fmt_ratio(ratio)]
            elif p is not None:
                ratio = r["value"] / p["value"] if r is not None and p["value"] else None
                cells += [f"{fmt_num(p['value'])} {p['unit']}", "", "", fmt_ratio(ratio)]
            else:
                cells += ["–", "–", "–", "–"]
        lines.append("| " + " | ".join(cells) + " |")

    table = "\n".join(lines)

    # Targets: ratios inside this one run.
    checks = []

    def rps(side, wl):
        r = get(side, wl)
        return r["rps"] if r and "rps" in r else None

    def p99(side, wl):
        r = get(side, wl)
        return r["p99_ms"] if r and "p99_ms" in r else None

    def val(side, wl):
        r = get(side, wl)
        return r["value"] if r and "value" in r else None

    def check(name, value, ok, shown):
        if value is None:
            checks.append(f"- [ ] {name}: not measured in this run")
        else:
            checks.append(f"- [{'x' if ok else ' '}] {name}: {shown} — {'met' if ok else 'MISSED'}")

    vh, d = rps("rs", "validate-hot"), rps("rs", "discovery")
    check("validate-hot >= 70% of discovery", vh and d and vh / d, vh and d and vh / d >= 0.7, fmt_pct(vh / d) if vh and d else "")
    pv = rps("py", "validate-hot")
    check("validate-hot >= 50x Python Keystone (cached)", vh and pv and vh / pv, vh and pv and vh / pv >= 50, fmt_ratio(vh / pv) if vh and pv else "")
    q = p99("rs", "validate-hot")
    check("validate-hot p99 <= 5 ms at c=64", q, q is not None and q <= 5, f"{fmt_ms(q)} ms" if q is not None else "")
    vt = rps("rs", "validate-trust")
    check("validate-trust >= 90% of validate-hot", vt and vh and vt / vh, vt and vh and vt / vh >= 0.9, fmt_pct(vt / vh) if vt and vh else "")
    vm = rps("rs", "validate-many")
    check("validate-many >= 50% of validate-hot", vm and vh and vm / vh, vm and vh and vm / vh >= 0.5, fmt_pct(vm / vh) if vm and vh else "")
    rr, pr = rps("rs", "rescope"), rps("py", "rescope")
    check("rescope >= 20x Keystone", rr and pr and rr / pr, rr and pr and rr / pr >= 20, fmt_ratio(rr / pr) if rr and pr else "")
    va = rps("rs", "validate-appcred")
    check("validate-appcred >= 90% of validate-hot", va and vh and va / vh, va and vh and va / vh >= 0.9, fmt_pct(va / vh) if va and vh else "")
    rp, pp = rps("rs", "password"), rps("py", "password")
    check("password >= 10x Keystone (argon2id, OWASP parameters)", rp and pp and rp / pp, rp and pp and rp / pp >= 10, fmt_ratio(rp / pp) if rp and pp else "")
    q = p99("rs", "mixed-logins")
    check("mixed-logins validation p99 <= 20 ms", q, q is not None and q <= 20, f"{fmt_ms(q)} ms" if q is not None else "")
    side = "base" if has_base else "rs"
    r0, r1 = rps(side, "validate-hot@0-events"), rps(side, "validate-hot@100k-events")
    check("validation with 100,000 revocation events within 10% of an empty table", r1 and r0 and r1 / r0, r1 and r0 and r1 / r0 >= 0.9, fmt_pct(r1 / r0) if r1 and r0 else "")
    if has_base:
        bh = rps("base", "validate-hot")
        check("large scale validate-hot within 10% of default scale", vh and bh and vh / bh, vh and bh and vh / bh >= 0.9, fmt_pct(vh / bh) if vh and bh else "")
    off = rps("nometrics", "validate-hot")
    check("validate-hot with metrics on within 5% of metrics off", vh and off and vh / off, vh and off and vh / off >= 0.95, fmt_pct(vh / off) if vh and off else "")
    m = val("rs", "idle-rss")
    check("idle RSS <= 50 MB", m, m is not None and m <= 50, f"{fmt_num(m)} MB" if m is not None else "")
    t = val("rs", "ready-time")
    check("ready <= 1 s", t, t is not None and t <= 1000, f"{fmt_num(t)} ms" if t is not None else "")

    out = []
    out.append(f"# keystone-rs benchmark, {meta.get('date', '')}\n")
    out.append(f"Scale: **{meta.get('scale', '?')}** ({meta.get('dataset', '')}).  ")
    out.append(f"Machine: {meta.get('machine', '')}.  ")
    out.append(f"Parameters: {meta.get('params', '')}.  ")
    out.append(f"keystone-rs: commit {meta.get('commit', '?')}, {meta.get('rs_server', '')}.  ")
    if "py" in sides:
        out.append(f"Python Keystone: {meta.get('py_server', '')}.  ")
    if has_base:
        out.append("The default-scale columns come from the same invocation, run first with the same binary and durations.  ")
    if has_before:
        out.append(f"The before columns: commit {meta.get('before_commit', '?')}, same data set and settings, run interleaved with this tree in the same invocation.  ")
    out.append("")
    out.append(table)
    out.append("")
    expl = ("Ratios are computed inside this run. `vs discovery` = req/s of the row / req/s of discovery. "
            "p50/p99 come from wrk's latency histogram. `RSS after` is the server's resident memory right "
            "after the row's run.")
    if has_base:
        expl += (" `vs default scale` = this scale's figure / the default scale's figure from the same run "
                 "(throughput: higher is better; memory and ready-time: lower is better).")
    if has_before:
        expl += " `now / before` = this tree's figure / the baseline commit's, measured alternately in this run."
    if "py" in sides:
        expl += (" `us / Keystone` = our value / Keystone's value (throughput rows: higher is better; "
                 "idle-rss, rss-after-load and ready-time: lower is better).")
    out.append(expl)
    out.append("")
    out.append("Targets (checked on this run's figures):\n")
    out.extend(checks)
    notes = meta.get("notes")
    if notes:
        out.append("")
        out.append("Notes:\n")
        for n in notes:
            out.append(f"- {n}")
    text = "\n".join(out) + "\n"
    if a.out:
        with open(a.out, "w") as f:
            f.write(text)
    sys.stdout.write(text)


def cmd_meta(a):
    with open(a.results, "a") as f:
        val = json.loads(a.json) if a.json else a.value
        f.write(json.dumps({"side": "meta", "workload": a.key, "value": val}) + "\n")


def cmd_machine(_a):
    model = platform.processor() or "?"
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    model = line.split(":", 1)[1].strip()
                    break
    except OSError:
        pass
    mem = "?"
    try:
        with open("/proc/meminfo") as f:
            kb = int(f.readline().split()[1])
            mem = f"{kb / 1024 / 1024:.0f} GiB"
    except OSError:
        pass
    load = os.getloadavg()
    print(f"{os.cpu_count()} CPUs ({model}), {mem} RAM, Linux {platform.release()}, load average at start {load[0]:.2f}")


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = ap.add_subparsers(dest="cmd", required=True)

    s = sub.add_parser("spawn")
    s.add_argument("--url", required=True)
    s.add_argument("--log", required=True)
    s.add_argument("--cwd")
    s.add_argument("--timeout", type=float, default=120)
    s.add_argument("--env", action="append")
    s.add_argument("cmd", nargs=argparse.REMAINDER)
    s.set_defaults(fn=cmd_spawn)

    s = sub.add_parser("token")
    s.add_argument("--url", required=True)
    s.add_argument("--user", required=True)
    s.add_argument("--password", required=True)
    s.add_argument("--project")
    s.set_defaults(fn=cmd_token)

    s = sub.add_parser("trust-token")
    s.add_argument("--url", required=True)
    s.add_argument("--admin-token", required=True)
    s.add_argument("--trustor", required=True)
    s.add_argument("--password", required=True)
    s.add_argument("--project", required=True)
    s.add_argument("--role", default="member")
    s.add_argument("--trustee", required=True)
    s.add_argument("--trustee-password", required=True)
    s.set_defaults(fn=cmd_trust_token)
    s = sub.add_parser("appcred")
    s.add_argument("--url", required=True)
    s.add_argument("--user", required=True)
    s.add_argument("--password", required=True)
    s.add_argument("--project", required=True)
    s.set_defaults(fn=cmd_appcred)

    s = sub.add_parser("rescope")
    s.add_argument("--url", required=True)
    s.add_argument("--token", required=True)
    s.add_argument("--project", required=True)
    s.set_defaults(fn=cmd_rescope)

    s = sub.add_parser("rss")
    s.add_argument("pid", type=int)
    s.set_defaults(fn=cmd_rss)

    s = sub.add_parser("record")
    s.add_argument("--results", required=True)
    s.add_argument("--side", required=True)
    s.add_argument("--workload", required=True)
    s.add_argument("--conc", type=int)
    s.add_argument("--wrk-output")
    s.add_argument("--value", type=float)
    s.add_argument("--unit", default="")
    s.add_argument("--note")
    s.add_argument("--rss-pid", type=int, help="also record this process tree's RSS (MB)")
    s.set_defaults(fn=cmd_record)

    s = sub.add_parser("meta")
    s.add_argument("--results", required=True)
    s.add_argument("key")
    s.add_argument("value", nargs="?")
    s.add_argument("--json")
    s.set_defaults(fn=cmd_meta)

    s = sub.add_parser("machine")
    s.set_defaults(fn=cmd_machine)

    s = sub.add_parser("report")
    s.add_argument("--results", required=True)
    s.add_argument("--out")
    s.set_defaults(fn=cmd_report)

    a = ap.parse_args()
    a.fn(a)


if __name__ == "__main__":
    main()
