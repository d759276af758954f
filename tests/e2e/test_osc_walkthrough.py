"""Issue #3's acceptance test: an operator's walkthrough with python-openstackclient
(`openstack ... -f json`) against keystone-rs. The commands go through
openstackclient's own entry point in this process; E2E_OSC_SUBPROCESS=1 runs
each as an `openstack` subprocess instead (see conftest.osc).

Create a domain, a project in it, a user with a password, a group (with the user
in it) and a role; grant the role to the user on the project, to the group on
the domain and to the user on the system; list the effective assignments with
names; create a region, a service and an endpoint and see them in the catalog;
issue a token as the new user; let the user change their own password; then
delete everything again (the domain is disabled first, as Keystone requires).
"""

import uuid

from conftest import osc, osc_run


def test_osc_walkthrough(keystone):
    sfx = uuid.uuid4().hex[:8]
    dom, proj, user, group, role = (f"wt-{k}-{sfx}" for k in ("dom", "proj", "user", "grp", "role"))
    region, svc_name, svc_type = f"wt-region-{sfx}", f"wt-svc-{sfx}", f"wt-type-{sfx}"
    pw1, pw2 = "first-Secret-1", "second-Secret-2"
    url = f"http://wt-{sfx}.example.org:8774/v2.1"

    def ok(*args, **kw):
        return osc(keystone, *args, **kw)

    # --- identity: domain, project, user, group, role -------------------------------
    d = ok("domain", "create", "--description", "walkthrough domain", dom, "-f", "json")
    assert d["name"] == dom and d["enabled"] is True
    assert d["description"] == "walkthrough domain"
    dom_id = d["id"]

    p = ok("project", "create", "--domain", dom, "--description", "walkthrough project",
           proj, "-f", "json")
    assert p["name"] == proj and p["domain_id"] == dom_id and p["enabled"] is True
    assert p["is_domain"] is False and p["parent_id"] == dom_id
    proj_id = p["id"]

    u = ok("user", "create", "--domain", dom, "--password", pw1, "--email", "wt@example.org",
           "--project", proj, "--project-domain", dom, user, "-f", "json")
    assert u["name"] == user and u["domain_id"] == dom_id and u["enabled"] is True
    assert u["default_project_id"] == proj_id and u["email"] == "wt@example.org"
    assert "password" not in u
    user_id = u["id"]

    g = ok("group", "create", "--domain", dom, "--description", "walkthrough group", group,
           "-f", "json")
    assert g["name"] == group and g["domain_id"] == dom_id
    group_id = g["id"]

    ok("group", "add", "user", "--group-domain", dom, "--user-domain", dom, group, user)
    contains = osc_run(keystone, "group", "contains", "user", "--group-domain", dom,
                       "--user-domain", dom, group, user)
    assert contains.returncode == 0, contains.stderr
    assert f"{user} in group {group}" in contains.stdout
    # (By group id: openstackclient 10.5's `user list --group NAME --domain NAME` passes
    # the domain *name* as domain_id to the group lookup, against any Keystone.)
    members = ok("user", "list", "--group", group_id, "-f", "json")
    assert [m["ID"] for m in members] == [user_id]

    r = ok("role", "create", role, "-f", "json")
    assert r["name"] == role and r["domain_id"] is None
    role_id = r["id"]

    # --- grants on the project, the domain (through the group) and the system ----------
    ok("role", "add", "--user", user, "--user-domain", dom, "--project", proj,
       "--project-domain", dom, role)
    ok("role", "add", "--group", group, "--group-domain", dom, "--domain", dom, role)
    ok("role", "add", "--user", user, "--user-domain", dom, "--system", "all", role)

    direct = ok("role", "assignment", "list", "--role", role, "-f", "json")
    assert sorted((a["User"], a["Group"], a["Project"], a["Domain"], a["System"]) for a in direct) == sorted([
        (user_id, "", proj_id, "", ""),
        ("", group_id, "", dom_id, ""),
        (user_id, "", "", "", "all"),
    ])

    effective = ok("role", "assignment", "list", "--effective", "--names", "--user", user,
                   "--user-domain", dom, "-f", "json")
    got = sorted((a["Role"], a["User"], a["Group"], a["Project"], a["Domain"], a["System"])
                 for a in effective)
    # --names spells users and projects as name@domain; the group's domain grant
    # shows up as the user's own. As in Python Keystone, the effective listing
    # covers project and domain assignments only, not system ones.
    assert got == sorted([
        (role, f"{user}@{dom}", "", f"{proj}@{dom}", "", ""),
        (role, f"{user}@{dom}", "", "", dom, ""),
    ]), effective
    system = ok("role", "assignment", "list", "--names", "--user", user, "--user-domain", dom,
                "--system", "all", "-f", "json")
    assert [(a["Role"], a["User"], a["System"]) for a in system] == [
        (role, f"{user}@{dom}", "all")
    ], system

    # --- catalog: region, service, endpoint ---------------------------------------------
    rg = ok("region", "create", "--description", "walkthrough region", region, "-f", "json")
    assert rg["region"] == region and rg["description"] == "walkthrough region"

    s = ok("service", "create", "--name", svc_name, "--description", "walkthrough service",
           svc_type, "-f", "json")
    assert s["name"] == svc_name and s["type"] == svc_type and s["enabled"] is True
    svc_id = s["id"]

    e = ok("endpoint", "create", "--region", region, svc_name, "public", url, "-f", "json")
    assert e["service_id"] == svc_id and e["interface"] == "public" and e["url"] == url
    assert e["region"] == region and e["enabled"] is True
    ep_id = e["id"]

    catalog = ok("catalog", "list", "-f", "json")
    entry = [c for c in catalog if c["Name"] == svc_name]
    assert len(entry) == 1, catalog
    assert entry[0]["Type"] == svc_type
    endpoints = entry[0]["Endpoints"]
    assert {"id": ep_id, "interface": "public", "region": region, "region_id": region,
            "url": url} in endpoints, endpoints
    shown = ok("catalog", "show", svc_type, "-f", "json")
    assert shown["name"] == svc_name

    # --- the new user ------------------------------------------------------------------
    as_user = {"username": user, "user_domain": dom, "project": proj, "project_domain": dom}
    t = ok("token", "issue", "-f", "json", password=pw1, **as_user)
    assert t["user_id"] == user_id and t["project_id"] == proj_id
    assert t["id"].startswith("gAAAAA")

    ok("user", "password", "set", "--original-password", pw1, "--password", pw2,
       password=pw1, **as_user)
    old = osc_run(keystone, "token", "issue", "-f", "json", password=pw1, **as_user)
    assert old.returncode != 0 and "401" in old.stderr, old.stderr
    t2 = ok("token", "issue", "-f", "json", password=pw2, **as_user)
    assert t2["user_id"] == user_id
    # A domain-scoped token through the group's grant.
    t3 = ok("token", "issue", "-f", "json", password=pw2, username=user, user_domain=dom,
            project=None, domain=dom)
    assert t3["domain_id"] == dom_id and "project_id" not in t3

    # --- and everything away again -------------------------------------------------------
    ok("endpoint", "delete", ep_id)
    ok("service", "delete", svc_id)
    ok("region", "delete", region)
    ok("role", "remove", "--user", user, "--user-domain", dom, "--project", proj,
       "--project-domain", dom, role)
    ok("role", "remove", "--group", group, "--group-domain", dom, "--domain", dom, role)
    ok("role", "remove", "--user", user, "--user-domain", dom, "--system", "all", role)
    assert ok("role", "assignment", "list", "--role", role, "-f", "json") == []
    ok("role", "delete", role)
    ok("group", "delete", "--domain", dom, group)
    ok("user", "delete", "--domain", dom, user)
    ok("project", "delete", "--domain", dom, proj)
    refused = osc_run(keystone, "domain", "delete", dom)
    assert refused.returncode != 0, "an enabled domain must not be deletable"
    ok("domain", "set", "--disable", dom)
    assert ok("domain", "show", dom, "-f", "json")["enabled"] is False
    ok("domain", "delete", dom)

    assert dom not in [x["Name"] for x in ok("domain", "list", "-f", "json")]
    assert region not in [x["Region"] for x in ok("region", "list", "-f", "json")]
    assert svc_name not in [x["Name"] for x in ok("service", "list", "-f", "json")]
    assert role not in [x["Name"] for x in ok("role", "list", "-f", "json")]
    assert all(c["Name"] != svc_name for c in ok("catalog", "list", "-f", "json"))
