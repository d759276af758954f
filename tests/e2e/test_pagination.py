"""Keystone 30's pagination of users and projects, as real clients use it:
`openstack project list --limit 1` and `openstack user list --limit 2` (openstacksdk
follows `links.next` with the marker), and openstacksdk listing 2,500 users page
after page, each exactly once.
"""

import uuid

import openstack
import pytest
from concurrent.futures import ThreadPoolExecutor

from conftest import ADMIN_PASSWORD, osc


def create(keystone, token, collection, body):
    member = collection[:-1]
    resp = keystone.api("POST", f"/{collection}", token=token, expect=201, json={member: body})
    return resp.json()[member]["id"]


def test_osc_lists_past_the_limit(keystone):
    token = keystone.admin_token()
    sfx = uuid.uuid4().hex[:8]
    projects = {create(keystone, token, "projects", {"name": f"pg-p{i}-{sfx}"}) for i in range(4)}
    users = {create(keystone, token, "users", {"name": f"pg-u{i}-{sfx}"}) for i in range(5)}

    listed = osc(keystone, "project", "list", "--limit", "1", "-f", "json")
    ids = [p["ID"] for p in listed]
    assert len(ids) == len(set(ids)), "every project once"
    assert projects <= set(ids)
    all_projects = [p["ID"] for p in osc(keystone, "project", "list", "-f", "json")]
    assert sorted(ids) == sorted(all_projects)

    listed = osc(keystone, "user", "list", "--limit", "2", "-f", "json")
    ids = [u["ID"] for u in listed]
    assert len(ids) == len(set(ids)), "every user once"
    assert users <= set(ids)
    assert len(ids) >= 6  # admin and the five


# openstacksdk pages when given a limit: it asks again with the last id as marker
# until a page comes back short (it does not read Keystone's dict-shaped links).
@pytest.fixture(scope="module")
def many_users(keystone):
    """A domain holding 2,500 users (created once per backend); (domain id, user ids)."""
    token = keystone.admin_token()
    domain = create(keystone, token, "domains", {"name": f"pg-many-{uuid.uuid4().hex[:8]}"})
    with ThreadPoolExecutor(max_workers=8) as pool:
        made = set(pool.map(
            lambda i: create(keystone, token, "users", {"name": f"many-{i}", "domain_id": domain}),
            range(2500),
        ))
    assert len(made) == 2500
    return domain, made


@pytest.mark.parametrize("page", [300, 1000])
def test_openstacksdk_pages_through_2500_users(keystone, many_users, page):
    domain, made = many_users
    conn = openstack.connect(
        auth_url=keystone.auth_url, username="admin", password=ADMIN_PASSWORD,
        user_domain_id="default", project_name="admin", project_domain_id="default",
        region_name="RegionOne", identity_interface="public",
    )
    query = {"domain_id": domain, "limit": page}
    listed = [u.id for u in conn.identity.users(**query)]
    assert len(listed) == 2500, f"{len(listed)} listed"
    assert set(listed) == made
    assert listed == sorted(listed), "id order, page after page"
