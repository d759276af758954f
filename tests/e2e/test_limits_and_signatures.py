"""Issue #15's real clients: python-openstackclient's `registered limit`, `limit`,
`credential` and `ec2 credentials` commands; oslo.limit's Enforcer (as Nova's and
Glance's unified-limits drivers use it) against keystone-rs; and S3/EC2 requests
signed by botocore (as boto3, aws-cli and rclone sign them) validated through
/v3/s3tokens and /v3/ec2tokens. Every test runs on both backends.
"""

import base64
import json
import subprocess
import sys
import textwrap
import urllib.parse
import uuid

from botocore.auth import HmacV1Auth, S3SigV4Auth, SigV4Auth
from botocore.awsrequest import AWSRequest
from botocore.credentials import Credentials

from conftest import ADMIN_PASSWORD, osc, osc_run
from test_credentials import ec2_credential, post  # noqa: F401 (a fixture, a helper)


def test_osc_limit_commands(keystone):
    sfx = uuid.uuid4().hex[:8]
    svc = osc(keystone, "service", "create", "--name", f"nova-{sfx}", f"compute-{sfx}",
              "-f", "json")
    proj = osc(keystone, "project", "create", f"lim-{sfx}", "-f", "json")

    reg = osc(keystone, "registered", "limit", "create", "--service", svc["id"],
              "--default-limit", "10", "--region", "RegionOne", "--description", "cores",
              f"cores-{sfx}", "-f", "json")
    assert reg["default_limit"] == 10 and reg["region_id"] == "RegionOne"
    assert reg["service_id"] == svc["id"] and reg["resource_name"] == f"cores-{sfx}"
    listed = osc(keystone, "registered", "limit", "list", "--service", svc["id"], "-f", "json")
    assert [r["ID"] for r in listed] == [reg["id"]]

    lim = osc(keystone, "limit", "create", "--project", proj["id"], "--service", svc["id"],
              "--resource-limit", "5", "--region", "RegionOne", f"cores-{sfx}", "-f", "json")
    assert lim["resource_limit"] == 5 and lim["project_id"] == proj["id"]
    listed = osc(keystone, "limit", "list", "--project", proj["id"], "-f", "json")
    assert [row["ID"] for row in listed] == [lim["id"]]
    shown = osc(keystone, "limit", "set", "--resource-limit", "7", lim["id"], "-f", "json")
    assert shown["resource_limit"] == 7
    assert osc(keystone, "limit", "show", lim["id"], "-f", "json")["resource_limit"] == 7

    # In use: the registered limit cannot go until its limit has.
    refused = osc_run(keystone, "registered", "limit", "delete", reg["id"])
    assert refused.returncode != 0
    osc(keystone, "limit", "delete", lim["id"])
    osc(keystone, "registered", "limit", "delete", reg["id"])
    assert osc(keystone, "registered", "limit", "list", "--service", svc["id"], "-f", "json") == []


def test_osc_credential_commands(keystone):
    admin = keystone.admin_access()
    cred = osc(keystone, "credential", "create", "--type", "cert", admin.user_id,
               "-----BEGIN CERTIFICATE-----", "-f", "json")
    assert cred["type"] == "cert" and cred["blob"] == "-----BEGIN CERTIFICATE-----"
    listed = osc(keystone, "credential", "list", "--type", "cert", "-f", "json")
    assert cred["id"] in [row["ID"] for row in listed]
    osc(keystone, "credential", "delete", cred["id"])
    listed = osc(keystone, "credential", "list", "--type", "cert", "-f", "json")
    assert cred["id"] not in [row["ID"] for row in listed]

    # keystoneclient, behind the ec2 commands, keeps the first server it saw: a
    # process of their own.
    ec2 = osc(keystone, "ec2", "credentials", "create", "--project", "admin", "-f", "json",
              own_process=True)
    assert ec2["project_id"] == admin.project_id and len(ec2["secret"]) == 32
    listed = osc(keystone, "ec2", "credentials", "list", "-f", "json", own_process=True)
    assert ec2["access"] in [row["Access"] for row in listed]
    osc(keystone, "ec2", "credentials", "delete", ec2["access"], own_process=True)
    listed = osc(keystone, "ec2", "credentials", "list", "-f", "json", own_process=True)
    assert ec2["access"] not in [row["Access"] for row in listed]


ENFORCE = textwrap.dedent("""
    import json, sys
    from oslo_config import cfg
    from oslo_limit import exception, limit, opts
    opts.register_opts(cfg.CONF)
    cfg.CONF(["--config-file", sys.argv[1]], project="e2e")
    usage, cases = json.loads(sys.argv[2]), json.loads(sys.argv[3])
    enforcer = limit.Enforcer(
        lambda project_id, names: {n: usage[project_id].get(n, 0) for n in names})
    out = []
    for project_id, deltas in cases:
        try:
            enforcer.enforce(project_id, deltas)
            out.append("ok")
        except exception.ProjectOverLimit as e:
            out.append([[o.resource_name, o.limit, o.current_usage, o.delta]
                        for o in e.over_limit_info_list])
    print(json.dumps(out))
""")


def test_oslo_limit_enforcer(keystone, tmp_path):
    """oslo.limit reads the model, the registered limits of its endpoint's service and
    region, and a project's overrides: a project with an override is held to it, one
    without to the default."""
    sfx = uuid.uuid4().hex[:8]
    svc = keystone.api("POST", "/services", expect=201, json={
        "service": {"type": f"compute-{sfx}", "name": f"nova-{sfx}"}}).json()["service"]
    endpoint = keystone.api("POST", "/endpoints", expect=201, json={"endpoint": {
        "service_id": svc["id"], "interface": "public", "region_id": "RegionOne",
        "url": f"http://nova-{sfx}.example.org/v2.1"}}).json()["endpoint"]
    keystone.api("POST", "/registered_limits", expect=201, json={"registered_limits": [
        {"service_id": svc["id"], "region_id": "RegionOne", "resource_name": "cores",
         "default_limit": 10},
        {"service_id": svc["id"], "region_id": "RegionOne", "resource_name": "ram",
         "default_limit": -1},
    ]})
    capped = keystone.api("POST", "/projects", expect=201, json={
        "project": {"name": f"capped-{sfx}", "domain_id": "default"}}).json()["project"]["id"]
    free = keystone.api("POST", "/projects", expect=201, json={
        "project": {"name": f"free-{sfx}", "domain_id": "default"}}).json()["project"]["id"]
    keystone.api("POST", "/limits", expect=201, json={"limits": [
        {"project_id": capped, "service_id": svc["id"], "region_id": "RegionOne",
         "resource_name": "cores", "resource_limit": 5}]})

    conf = tmp_path / "oslo-limit.conf"
    conf.write_text(textwrap.dedent(f"""
        [oslo_limit]
        auth_type = password
        auth_url = {keystone.auth_url}
        username = admin
        password = {ADMIN_PASSWORD}
        user_domain_id = default
        project_name = admin
        project_domain_id = default
        endpoint_id = {endpoint["id"]}
    """))
    usage = {capped: {"cores": 4, "ram": 10**6}, free: {"cores": 9, "ram": 0}}
    cases = [
        [capped, {"cores": 1}],
        [capped, {"cores": 2}],
        [free, {"cores": 1}],
        [free, {"cores": 2, "ram": 10**9}],
    ]
    out = subprocess.run([sys.executable, "-c", ENFORCE, str(conf), json.dumps(usage),
                          json.dumps(cases)], capture_output=True, text=True, timeout=120,
                         stdin=subprocess.DEVNULL)
    assert out.returncode == 0, out.stderr
    assert json.loads(out.stdout) == [
        "ok",
        [["cores", 5, 4, 2]],
        "ok",
        [["cores", 10, 9, 2]],
    ]


# --- botocore-signed requests -------------------------------------------------------


def s3token_body(access, string_to_sign, signature):
    """What Swift's s3token middleware sends: the string to sign, base64url."""
    return {"credentials": {
        "access": access, "signature": signature,
        "token": base64.urlsafe_b64encode(string_to_sign.encode()).decode()}}


def test_s3_sigv2_signed_by_botocore(keystone, ec2_credential):
    admin, cred = ec2_credential
    creds = Credentials(cred["access"], cred["secret"])
    req = AWSRequest(method="PUT", url="http://s3.example.org/bucket/key.txt?acl",
                     headers={"Content-Type": "text/plain", "x-amz-meta-color": "red"})
    auth = HmacV1Auth(creds)
    auth.add_auth(req)
    split = urllib.parse.urlsplit(req.url)
    string_to_sign = auth.canonical_string(req.method, split, req.headers)
    signature = req.headers["Authorization"].split(":", 1)[1]
    resp = post(keystone, "/s3tokens", s3token_body(cred["access"], string_to_sign, signature))
    assert resp.status_code == 200, resp.text
    token = resp.json()["token"]
    assert token["project"]["id"] == admin.project_id
    assert token["user"]["id"] == admin.user_id
    wrong = s3token_body(cred["access"], string_to_sign.replace("PUT", "GET", 1), signature)
    assert post(keystone, "/s3tokens", wrong).status_code == 401


class CapturingS3SigV4(S3SigV4Auth):
    """botocore's S3 SigV4 signer, keeping the string it signed (what Swift's s3api
    computes from the request and sends on to Keystone)."""

    def string_to_sign(self, request, canonical_request):
        self.signed = super().string_to_sign(request, canonical_request)
        return self.signed


def sigv4_signature(req):
    return req.headers["Authorization"].rsplit("Signature=", 1)[1]


def test_s3_sigv4_signed_by_botocore(keystone, ec2_credential):
    admin, cred = ec2_credential
    req = AWSRequest(method="GET", url="http://s3.example.org/bucket/key.txt?versionId=3")
    auth = CapturingS3SigV4(Credentials(cred["access"], cred["secret"]), "s3", "us-east-1")
    auth.add_auth(req)
    body = s3token_body(cred["access"], auth.signed, sigv4_signature(req))
    resp = post(keystone, "/s3tokens", body)
    assert resp.status_code == 200, resp.text
    assert resp.json()["token"]["project"]["id"] == admin.project_id
    # The same request signed with another secret.
    bad = AWSRequest(method="GET", url=req.url)
    CapturingS3SigV4(Credentials(cred["access"], uuid.uuid4().hex), "s3",
                     "us-east-1").add_auth(bad)
    body["credentials"]["signature"] = sigv4_signature(bad)
    assert post(keystone, "/s3tokens", body).status_code == 401


def test_ec2_sigv4_signed_by_botocore(keystone, ec2_credential):
    """An EC2 API call signed by botocore (SigV4, Authorization header), passed to
    /v3/ec2tokens as an EC2 front end passes it: verb, host, path, params, the request's
    headers and the body hash."""
    admin, cred = ec2_credential
    params = {"Action": "DescribeInstances", "Version": "2016-11-15"}
    url = "http://ec2.example.org:8788/?" + urllib.parse.urlencode(params)
    req = AWSRequest(method="GET", url=url, headers={"Host": "ec2.example.org:8788"})
    SigV4Auth(Credentials(cred["access"], cred["secret"]), "ec2", "RegionOne").add_auth(req)
    body = {"credentials": {
        "access": cred["access"], "signature": sigv4_signature(req),
        "host": "ec2.example.org:8788", "verb": "GET", "path": "/", "params": params,
        "headers": dict(req.headers.items()),
        "body_hash": "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855",
    }}
    resp = post(keystone, "/ec2tokens", body)
    assert resp.status_code == 200, resp.text
    assert resp.json()["token"]["project"]["id"] == admin.project_id
    body["credentials"]["params"] = {**params, "Action": "TerminateInstances"}
    assert post(keystone, "/ec2tokens", body).status_code == 401


def test_swift_s3token_middleware(keystone, ec2_credential):
    """Swift's own s3token filter (what a Swift proxy runs behind s3api), with service
    authentication as Keystone 30 requires, in front of a small WSGI app: a request
    signed by botocore reaches the app as the credential's project, a forged one is
    refused with S3's AccessDenied (401 from s3token)."""
    from swift.common import swob
    from swift.common.middleware.s3api import s3token

    admin, cred = ec2_credential
    seen = {}

    def app(environ, start_response):
        seen.update(path=environ["PATH_INFO"], project=environ.get("HTTP_X_PROJECT_ID"),
                    user=environ.get("HTTP_X_USER_ID"), roles=environ.get("HTTP_X_ROLES"))
        start_response("200 OK", [("Content-Type", "text/plain")])
        return [b"ok"]

    middleware = s3token.filter_factory(
        {}, auth_uri=keystone.auth_url, secret_cache_duration="0", auth_type="password",
        auth_url=keystone.auth_url, username="admin", password=ADMIN_PASSWORD,
        user_domain_id="default", project_name="admin", project_domain_id="default",
    )(app)

    def s3_request(secret):
        req = AWSRequest(method="GET", url="http://s3.example.org/bucket/key.txt")
        auth = CapturingS3SigV4(Credentials(cred["access"], secret), "s3", "us-east-1")
        auth.add_auth(req)
        details = {"access_key": cred["access"], "signature": sigv4_signature(req),
                   "string_to_sign": auth.signed, "check_signature": lambda _: False}
        return swob.Request.blank("/v1/AUTH_placeholder/bucket/key.txt",
                                  environ={"s3api.auth_details": details})

    resp = s3_request(cred["secret"]).get_response(middleware)
    assert resp.status_int == 200, resp.body
    assert seen["path"] == f"/v1/AUTH_{admin.project_id}/bucket/key.txt"
    assert seen["project"] == admin.project_id and seen["user"] == admin.user_id
    assert "admin" in seen["roles"].split(",")

    seen.clear()
    resp = s3_request(uuid.uuid4().hex).get_response(middleware)
    assert resp.status_int == 401 and b"AccessDenied" in resp.body
    assert seen == {}
