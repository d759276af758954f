"""Credentials shared with Python Keystone (keystone==30.0.0, the PyPI package), and
EC2/S3 signatures made by Keystone's own signer code.

No Python Keystone server runs. keystone.conf.CONF points [credential]
key_repository at keystone-rs's credential key repository (set up by
`keystone-rs credential setup`), and:

(a) a credential keystone-rs stored decrypts with Keystone's fernet credential
    provider, and its key_hash is Keystone's primary_key_hash;
(b) a row encrypted by Keystone's provider (as Keystone's credential manager writes
    an ec2 row: json.dumps of the blob) and written into the database reads back
    through keystone-rs's /v3/credentials and OS-EC2 APIs;
(c) requests signed by keystoneclient's Ec2Signer (what Keystone verifies with:
    versions 2 and 4) and S3 string-to-sign signatures as Keystone's s3tokens
    computes them get tokens from /v3/ec2tokens and /v3/s3tokens; a wrong secret
    and an unknown key are 401.
"""

import base64
import datetime
import hashlib
import hmac
import json
import shutil
import sqlite3
import subprocess
import uuid

import pytest
import requests


@pytest.fixture
def provider(keystone):
    import importlib

    ks_conf = importlib.import_module("keystone.conf")
    core = importlib.import_module("keystone.credential.providers.fernet.core")
    conf = ks_conf.CONF
    if not hasattr(conf, "credential"):
        ks_conf.configure(conf)
    try:
        conf(args=[], project="keystone", default_config_files=[], default_config_dirs=[])
    except Exception:  # already parsed by another module's fixture
        pass
    conf.set_override("key_repository", str(keystone.credential_keys), group="credential")
    yield core
    conf.clear_override("key_repository", group="credential")


def sql(ks, statement, params=()):
    """Runs one statement on keystone-rs's database; returns the rows."""
    if ks.pg is None:
        path = ks.connection.removeprefix("sqlite:///")
        with sqlite3.connect(path) as db:
            return db.execute(statement, params).fetchall()
    base, name = ks.pg
    url = base.rsplit("/", 1)[0] + "/" + name
    for p in params:  # literal values from the test only
        statement = statement.replace("?", "'" + str(p).replace("'", "''") + "'", 1)
    out = subprocess.run([shutil.which("psql"), url, "-X", "-At", "-F", "\t", "-c", statement],
                         capture_output=True, text=True, timeout=60, check=True)
    return [tuple(line.split("\t")) for line in out.stdout.splitlines() if line]


def test_keystone_rs_credentials_decrypt_in_python_keystone(keystone, provider):
    admin = keystone.admin_access()
    resp = keystone.api("POST", "/credentials", expect=201, json={"credential": {
        "user_id": admin.user_id, "type": "cert", "blob": "written by keystone-rs \u00e9"}})
    cred_id = resp.json()["credential"]["id"]
    [(encrypted, key_hash)] = sql(
        keystone, "SELECT encrypted_blob, key_hash FROM credential WHERE id = ?", (cred_id,))
    assert provider.Provider().decrypt(encrypted) == "written by keystone-rs \u00e9"
    _, keys = provider.get_multi_fernet_keys()
    assert key_hash == provider.primary_key_hash(keys)
    keystone.api("DELETE", f"/credentials/{cred_id}", expect=204)


def test_python_keystone_credentials_read_in_keystone_rs(keystone, provider):
    admin = keystone.admin_access()
    access, secret = uuid.uuid4().hex, uuid.uuid4().hex
    blob = json.dumps({"access": access, "secret": secret, "trust_id": None})
    # keystone.credential.core.Manager._encrypt_credential for type ec2.
    encrypted, key_hash = provider.Provider().encrypt(json.dumps(blob))
    cred_id = hashlib.sha256(access.encode()).hexdigest()
    sql(keystone,
        "INSERT INTO credential (id, user_id, project_id, encrypted_blob, type, key_hash, extra)"
        " VALUES (?, ?, ?, ?, 'ec2', ?, '{}')",
        (cred_id, admin.user_id, admin.project_id, encrypted.decode(), key_hash))
    got = keystone.api("GET", f"/credentials/{cred_id}", expect=200).json()["credential"]
    assert got["blob"] == blob
    assert got["type"] == "ec2"
    ec2 = keystone.api("GET", f"/users/{admin.user_id}/credentials/OS-EC2/{access}",
                       expect=200).json()["credential"]
    assert (ec2["access"], ec2["secret"], ec2["tenant_id"]) == (access, secret, admin.project_id)
    keystone.api("DELETE", f"/credentials/{cred_id}", expect=204)


@pytest.fixture
def ec2_credential(keystone):
    admin = keystone.admin_access()
    path = f"/users/{admin.user_id}/credentials/OS-EC2"
    cred = keystone.api("POST", path, expect=201,
                        json={"tenant_id": admin.project_id}).json()["credential"]
    yield admin, cred
    keystone.api("DELETE", f"{path}/{cred['access']}")


def post(keystone, path, body):
    return requests.post(keystone.auth_url + path, json=body, timeout=30,
                         headers={"X-Auth-Token": keystone.admin_token()})


def test_ec2tokens_with_keystoneclient_signer(keystone, ec2_credential):
    from keystoneclient.contrib.ec2.utils import Ec2Signer

    admin, cred = ec2_credential
    now = datetime.datetime.now(datetime.timezone.utc)
    v2 = {
        "access": cred["access"], "host": "ec2.example.com:8773", "verb": "GET",
        "path": "/services/Cloud",
        "params": {"SignatureVersion": "2", "Action": "DescribeInstances",
                   "AWSAccessKeyId": cred["access"], "Timestamp": now.strftime("%Y-%m-%dT%H:%M:%SZ"),
                   "Name": "a b/\u00e9"},
    }
    amz_date = now.strftime("%Y%m%dT%H%M%SZ")
    v4 = {
        "access": cred["access"], "host": "ec2.example.com", "verb": "GET", "path": "/",
        "params": {"Action": "DescribeRegions"},
        "headers": {"Host": "ec2.example.com", "X-Amz-Date": amz_date,
                    "Authorization": f"AWS4-HMAC-SHA256 Credential={cred['access']}/"
                                     f"{amz_date[:8]}/RegionOne/ec2/aws4_request, "
                                     "SignedHeaders=host;x-amz-date, Signature=x"},
        "body_hash": hashlib.sha256(b"").hexdigest(),
    }
    for creds in (v2, v4):
        creds["signature"] = Ec2Signer(cred["secret"]).generate(json.loads(json.dumps(creds)))
        resp = post(keystone, "/ec2tokens", {"credentials": creds})
        assert resp.status_code == 200, resp.text
        token = resp.json()["token"]
        assert token["methods"] == ["ec2credential"]
        assert token["project"]["id"] == admin.project_id
        assert resp.headers["X-Subject-Token"]
        wrong = dict(creds, signature=Ec2Signer("wrong").generate(json.loads(json.dumps(creds))))
        assert post(keystone, "/ec2tokens", {"credentials": wrong}).status_code == 401
    unknown = dict(v2, access="nobody")
    assert post(keystone, "/ec2tokens", {"credentials": unknown}).status_code == 401


def test_s3tokens_as_keystone_signs(keystone, ec2_credential):
    admin, cred = ec2_credential
    date = datetime.datetime.now(datetime.timezone.utc).strftime("%a, %d %b %Y %H:%M:%S GMT")
    string_to_sign = f"GET\n\n\n{date}\n/bucket/object".encode()
    # keystone/api/s3tokens.py _calculate_signature_v1.
    signature = base64.encodebytes(
        hmac.new(cred["secret"].encode(), string_to_sign, hashlib.sha1).digest()
    ).decode().strip()
    body = {"credentials": {"access": cred["access"], "signature": signature,
                            "token": base64.urlsafe_b64encode(string_to_sign).decode()}}
    resp = post(keystone, "/s3tokens", body)
    assert resp.status_code == 200, resp.text
    assert resp.json()["token"]["project"]["id"] == admin.project_id
    body["credentials"]["signature"] = "bad"
    assert post(keystone, "/s3tokens", body).status_code == 401
