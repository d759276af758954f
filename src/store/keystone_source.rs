//! Reading a Python Keystone database (schema 2023.1 or newer; SQLite, PostgreSQL or
//! MySQL/MariaDB) for `db import`: every family keystone-rs supports, mapped to our tables with ids
//! kept. Read only; nothing here writes to the source.

use std::collections::{HashMap, HashSet};

use serde_json::{Map, Value};
use sqlx::any::{AnyPoolOptions, AnyRow};
use sqlx::AnyPool;

use super::{boolean, opt_int, DbContext, StoreError, StoreResult};
use crate::config::{DatabaseUrl, SourceUrl};
use crate::model::{Cell, ImportTable};
use sqlx::Row;
use std::str::FromStr;

/// Every alembic revision of Keystone 30.0.0's migrations (2023.1 onwards, when
/// Keystone moved to alembic); a database at any other revision is refused rather
/// than misread.
const KNOWN_REVISIONS: &[&str] = &[
    "27e647c0fad4",
    "e25ffa003242",
    "29e87d24a316",
    "99de3849d860",
    "b4f8b3f584e0",
    "11c3b243b4cb",
    "47147121",
    "e8725d6fa226",
    "742c857f1dfb",
    "c88cdce8f248",
];

/// The families `db import` does not carry (keystone-rs lacks them): counted and
/// named, never dropped silently.
const NOT_SUPPORTED: &[(&str, &str)] = &[
    ("identity_provider", "identity providers"),
    ("nonlocal_user", "non-local users"),
    ("federated_user", "federated users"),
    (
        "expiring_user_group_membership",
        "expiring group memberships",
    ),
];

/// One `password` row: hash, created and expires (Unix seconds), set by its owner.
#[derive(Clone, Debug, Default)]
struct StoredPassword {
    hash: Option<String>,
    created: Option<i64>,
    expires: Option<i64>,
    self_service: bool,
}

/// Keystone's user option ids (`identity/backends/resource_options.py`) and the
/// names keystone-rs stores them under; the MFA options (MFAR, MFAE) have no
/// counterpart here and are reported.
const USER_OPTIONS: &[(&str, &str)] = &[
    ("1000", "ignore_change_password_upon_first_use"),
    ("1001", "ignore_password_expiry"),
    ("1002", "ignore_lockout_failure_attempts"),
    ("1003", "lock_password"),
    ("1004", "ignore_user_inactivity"),
];

/// Keystone's database, opened read only.
pub struct KeystoneSource {
    pool: AnyPool,
    mysql: bool,
}

fn err(detail: impl Into<String>) -> StoreError {
    StoreError::Corrupt {
        context: "reading the Keystone database",
        detail: detail.into(),
    }
}

/// A text column. MySQL's TEXT columns reach sqlx's Any driver as BLOBs: their
/// bytes are read as UTF-8.
fn opt_text(row: &AnyRow, col: &'static str) -> StoreResult<Option<String>> {
    match row.try_get::<Option<String>, _>(col) {
        Ok(v) => Ok(v),
        Err(_) => match row.try_get::<Option<Vec<u8>>, _>(col) {
            Ok(None) => Ok(None),
            Ok(Some(bytes)) => String::from_utf8(bytes)
                .map(Some)
                .map_err(|_| err(format!("column {col} is not UTF-8 text"))),
            Err(e) => Err(err(format!("column {col}: {e}"))),
        },
    }
}

fn text(row: &AnyRow, col: &'static str) -> StoreResult<String> {
    opt_text(row, col)?.ok_or_else(|| err(format!("column {col} is NULL")))
}

/// A resource option's value (Keystone's JsonBlob; NULL is null).
fn option_value(row: &AnyRow) -> StoreResult<Value> {
    match opt_text(row, "option_value")? {
        None => Ok(Value::Null),
        Some(v) => serde_json::from_str(&v)
            .map_err(|_| err(format!("an option value is not JSON: {v:.60}"))),
    }
}

/// Keystone's free-form `extra` (JSON text, maybe NULL).
fn extra_of(row: &AnyRow) -> StoreResult<Map<String, Value>> {
    match opt_text(row, "extra")? {
        None => Ok(Map::new()),
        Some(s) if s.trim().is_empty() => Ok(Map::new()),
        Some(s) => match serde_json::from_str(&s) {
            Ok(Value::Object(m)) => Ok(m),
            _ => Err(err(format!(
                "an extra column is not a JSON object: {s:.60}"
            ))),
        },
    }
}

fn json(m: &Map<String, Value>) -> Cell {
    Cell::Text(Value::Object(m.clone()).to_string())
}

/// A DATETIME read as text (`CAST(... AS TEXT)`), as Unix seconds.
fn seconds(v: Option<String>) -> StoreResult<Option<i64>> {
    let Some(v) = v else { return Ok(None) };
    let trimmed = v.trim().trim_end_matches("+00").trim_end_matches("+00:00");
    for fmt in ["%Y-%m-%d %H:%M:%S%.f", "%Y-%m-%dT%H:%M:%S%.f", "%Y-%m-%d"] {
        if let Ok(t) = chrono::NaiveDateTime::parse_from_str(trimmed, fmt) {
            return Ok(Some(t.and_utc().timestamp()));
        }
        if let Ok(d) = chrono::NaiveDate::parse_from_str(trimmed, fmt) {
            if let Some(t) = d.and_hms_opt(0, 0, 0) {
                return Ok(Some(t.and_utc().timestamp()));
            }
        }
    }
    Err(err(format!("unreadable time {v:?}")))
}

/// Keystone's OAuth1 `expires_at` (an ISO 8601 string, `...T...Z` with microseconds)
/// as microseconds since the epoch.
fn iso_micros(v: Option<String>) -> StoreResult<Option<i64>> {
    let Some(v) = v else { return Ok(None) };
    chrono::DateTime::parse_from_rfc3339(v.trim())
        .map(|t| Some(t.timestamp_micros()))
        .or_else(|_| {
            chrono::NaiveDateTime::parse_from_str(
                v.trim().trim_end_matches('Z'),
                "%Y-%m-%dT%H:%M:%S%.f",
            )
            .map(|t| Some(t.and_utc().timestamp_micros()))
        })
        .map_err(|_| err(format!("unreadable time {v:?}")))
}

/// Orders rows so that each parent comes before its children (`parent` gives a row's
/// parent id, if any, among `ids`).
fn parents_first(rows: Vec<(String, Option<String>, Vec<Cell>)>) -> Vec<Vec<Cell>> {
    let ids: HashSet<String> = rows.iter().map(|r| r.0.clone()).collect();
    let mut done: HashSet<String> = HashSet::new();
    let mut pending = rows;
    let mut out = Vec::with_capacity(pending.len());
    while !pending.is_empty() {
        let before = pending.len();
        let (ready, rest): (Vec<_>, Vec<_>) = pending.into_iter().partition(|(_, parent, _)| {
            parent
                .as_ref()
                .is_none_or(|p| done.contains(p) || !ids.contains(p))
        });
        for (id, _, cells) in ready {
            done.insert(id);
            out.push(cells);
        }
        pending = rest;
        if pending.len() == before {
            // A cycle: keep the rows; the insert reports the broken reference.
            out.extend(pending.into_iter().map(|(_, _, c)| c));
            break;
        }
    }
    out
}

fn table(
    family: &'static str,
    table: &'static str,
    columns: &'static [&'static str],
    read: usize,
) -> ImportTable {
    ImportTable {
        family,
        table,
        columns,
        rows: Vec::new(),
        skipped: Vec::new(),
        read,
    }
}

/// How a source column becomes a cell.
#[derive(Clone, Copy, Debug)]
enum Conv {
    Text,
    OptText,
    /// NULL becomes '' (our description columns are NOT NULL).
    Blank,
    Bool,
    Int,
    Extra,
}

fn cell(row: &AnyRow, col: &'static str, conv: Conv) -> StoreResult<Cell> {
    Ok(match conv {
        Conv::Text => Cell::Text(text(row, col)?),
        Conv::OptText => Cell::opt_text(opt_text(row, col)?),
        Conv::Blank => Cell::Text(opt_text(row, col)?.unwrap_or_default()),
        Conv::Bool => Cell::Bool(boolean(row, col)?),
        Conv::Int => Cell::Int(opt_int(row, col)?.unwrap_or_default()),
        Conv::Extra => json(&extra_of(row)?),
    })
}

impl KeystoneSource {
    /// Opens `url` (Keystone's `[database] connection` form) read only.
    pub async fn open(url: &SourceUrl) -> StoreResult<Self> {
        sqlx::any::install_default_drivers();
        let (sqlx_url, mysql) = match url {
            SourceUrl::Storage(DatabaseUrl::Sqlite { path }) => {
                if !path.exists() {
                    return Err(err(format!("{} does not exist", path.display())));
                }
                (format!("sqlite://{}?mode=ro", path.display()), false)
            }
            SourceUrl::Storage(DatabaseUrl::Postgres { url }) => (url.clone(), false),
            SourceUrl::Mysql { url } => (url.clone(), true),
        };
        // Reading whole tables is slow by design: no slow-statement warnings.
        let options = sqlx::ConnectOptions::log_slow_statements(
            sqlx::any::AnyConnectOptions::from_str(&sqlx_url)
                .map_err(|e| err(format!("unusable URL: {e}")))?,
            tracing::log::LevelFilter::Off,
            std::time::Duration::from_secs(1),
        );
        let pool = AnyPoolOptions::new()
            .max_connections(2)
            .acquire_timeout(std::time::Duration::from_secs(15))
            .after_connect(move |conn, _| {
                Box::pin(async move {
                    if mysql {
                        // Keystone's table names "user", "group" and "limit" are quoted
                        // the standard way in every query here; nothing here writes.
                        for statement in [
                            "SET SESSION sql_mode = CONCAT(@@SESSION.sql_mode, ',ANSI_QUOTES')",
                            "SET SESSION TRANSACTION READ ONLY",
                        ] {
                            sqlx::Executor::execute(&mut *conn, statement).await?;
                        }
                    }
                    Ok(())
                })
            })
            .connect_with(options)
            .await
            .ctx("opening the Keystone database")?;
        Ok(KeystoneSource { pool, mysql })
    }

    /// MySQL spells the two casts used here differently; nothing else differs.
    fn dialect<'a>(&self, sql: &'a str) -> std::borrow::Cow<'a, str> {
        if self.mysql {
            sql.replace(" AS INTEGER)", " AS SIGNED)")
                .replace(" AS TEXT)", " AS CHAR)")
                .into()
        } else {
            sql.into()
        }
    }

    async fn rows(&self, sql: &str) -> StoreResult<Vec<AnyRow>> {
        let sql = self.dialect(sql);
        sqlx::query(&sql)
            .fetch_all(&self.pool)
            .await
            .map_err(|e| err(format!("{sql}: {e}")))
    }

    /// The schema revision, refused unless it is one this importer knows.
    pub async fn check_schema(&self) -> StoreResult<Vec<String>> {
        let rows = sqlx::query("SELECT version_num FROM alembic_version")
            .fetch_all(&self.pool)
            .await
            .map_err(|_| {
                err("not a Keystone database of release 2023.1 or newer (no alembic_version table); upgrade it with Keystone's `keystone-manage db_sync` first")
            })?;
        let revisions: Vec<String> = rows
            .iter()
            .map(|r| text(r, "version_num"))
            .collect::<StoreResult<_>>()?;
        if revisions.is_empty()
            || revisions
                .iter()
                .any(|r| !KNOWN_REVISIONS.contains(&r.as_str()))
        {
            return Err(err(format!(
                "unknown Keystone schema revision {revisions:?}: keystone-rs imports the schemas of Keystone 2023.1 to 30.0.0"
            )));
        }
        Ok(revisions)
    }

    /// A family copied column for column (same names here and in Keystone).
    async fn copy(
        &self,
        family: &'static str,
        target: &'static str,
        sql: &str,
        columns: &'static [&'static str],
        convs: &[Conv],
    ) -> StoreResult<ImportTable> {
        let rows = self.rows(sql).await?;
        let mut t = table(family, target, columns, rows.len());
        for r in &rows {
            t.rows.push(
                columns
                    .iter()
                    .zip(convs)
                    .map(|(c, conv)| cell(r, c, *conv))
                    .collect::<StoreResult<_>>()?,
            );
        }
        Ok(t)
    }

    /// Every supported family, in an order that satisfies our foreign keys.
    pub async fn read_all(&self) -> StoreResult<Vec<ImportTable>> {
        let mut out = Vec::new();

        out.push(
            self.copy(
                "domains",
                "domain",
                "SELECT id, name, description, CAST(enabled AS INTEGER) AS enabled, extra FROM project WHERE is_domain AND id <> '<<keystone.domain.root>>' ORDER BY id",
                &["id", "name", "description", "enabled", "extra"],
                &[Conv::Text, Conv::Text, Conv::Blank, Conv::Bool, Conv::Extra],
            )
            .await?,
        );

        let rows = self
            .rows("SELECT id, name, domain_id, parent_id, description, CAST(enabled AS INTEGER) AS enabled, extra FROM project WHERE NOT is_domain ORDER BY id")
            .await?;
        let mut projects = table(
            "projects",
            "project",
            &[
                "id",
                "name",
                "domain_id",
                "parent_id",
                "description",
                "enabled",
                "extra",
            ],
            rows.len(),
        );
        let mut tree = Vec::new();
        for r in &rows {
            let id = text(r, "id")?;
            let domain_id = text(r, "domain_id")?;
            // A root project's parent is its domain in Keystone; NULL here.
            let parent = opt_text(r, "parent_id")?.filter(|p| *p != domain_id);
            tree.push((
                id.clone(),
                parent.clone(),
                vec![
                    Cell::Text(id),
                    Cell::Text(text(r, "name")?),
                    Cell::Text(domain_id),
                    Cell::opt_text(parent),
                    Cell::Text(opt_text(r, "description")?.unwrap_or_default()),
                    Cell::Bool(boolean(r, "enabled")?),
                    json(&extra_of(r)?),
                ],
            ));
        }
        projects.rows = parents_first(tree);
        let project_ids: HashSet<String> = rows
            .iter()
            .map(|r| text(r, "id"))
            .collect::<StoreResult<_>>()?;
        out.push(projects);

        out.push(
            self.copy(
                "project tags",
                "project_tag",
                "SELECT project_id, name FROM project_tag ORDER BY project_id, name",
                &["project_id", "name"],
                &[Conv::Text, Conv::Text],
            )
            .await?,
        );

        let users = self.users().await?;
        let user_ids: HashSet<String> = users
            .first()
            .map(|t| {
                t.rows
                    .iter()
                    .filter_map(|r| match r.first() {
                        Some(Cell::Text(id)) => Some(id.clone()),
                        _ => None,
                    })
                    .collect()
            })
            .unwrap_or_default();
        out.extend(users);

        out.push(
            self.copy(
                "groups",
                "user_group",
                "SELECT id, name, domain_id, description, extra FROM \"group\" ORDER BY id",
                &["id", "name", "domain_id", "description", "extra"],
                &[Conv::Text, Conv::Text, Conv::Text, Conv::Blank, Conv::Extra],
            )
            .await?,
        );

        let rows = self
            .rows("SELECT user_id, group_id FROM user_group_membership ORDER BY group_id, user_id")
            .await?;
        let mut members = table(
            "group memberships",
            "group_membership",
            &["user_id", "group_id"],
            rows.len(),
        );
        for r in &rows {
            let user_id = text(r, "user_id")?;
            if !user_ids.contains(&user_id) {
                members
                    .skipped
                    .push(format!("user {user_id} is not a local user"));
                continue;
            }
            members
                .rows
                .push(vec![Cell::Text(user_id), Cell::Text(text(r, "group_id")?)]);
        }
        out.push(members);

        out.extend(self.roles().await?);

        out.push(
            self.copy(
                "implied roles",
                "implied_role",
                "SELECT prior_role_id, implied_role_id FROM implied_role ORDER BY prior_role_id, implied_role_id",
                &["prior_role_id", "implied_role_id"],
                &[Conv::Text, Conv::Text],
            )
            .await?,
        );

        out.push(
            self.copy(
                "assignments",
                "assignment",
                // Keystone's system assignments target 'system'; ours the model's name for it.
                &format!("SELECT type, actor_id, target_id, role_id, CAST(inherited AS INTEGER) AS inherited FROM assignment UNION ALL SELECT type, actor_id, '{}' AS target_id, role_id, CAST(inherited AS INTEGER) AS inherited FROM system_assignment", crate::model::SYSTEM_TARGET),
                &["type", "actor_id", "target_id", "role_id", "inherited"],
                &[Conv::Text, Conv::Text, Conv::Text, Conv::Text, Conv::Bool],
            )
            .await?,
        );

        let rows = self
            .rows("SELECT id, description, parent_region_id, extra FROM region ORDER BY id")
            .await?;
        let mut regions = table(
            "regions",
            "region",
            &["id", "description", "parent_region_id", "extra"],
            rows.len(),
        );
        let mut tree = Vec::new();
        for r in &rows {
            let id = text(r, "id")?;
            let parent = opt_text(r, "parent_region_id")?;
            tree.push((
                id.clone(),
                parent.clone(),
                vec![
                    Cell::Text(id),
                    Cell::Text(opt_text(r, "description")?.unwrap_or_default()),
                    Cell::opt_text(parent),
                    json(&extra_of(r)?),
                ],
            ));
        }
        regions.rows = parents_first(tree);
        out.push(regions);

        let rows = self
            .rows("SELECT id, type, CAST(enabled AS INTEGER) AS enabled, extra FROM service ORDER BY id")
            .await?;
        let mut services = table(
            "services",
            "service",
            &["id", "type", "name", "description", "enabled", "extra"],
            rows.len(),
        );
        for r in &rows {
            // Keystone keeps a service's name and description in `extra`.
            let mut extra = extra_of(r)?;
            let field = |v: Option<Value>| match v {
                Some(Value::String(s)) => s,
                _ => String::new(),
            };
            let name = field(extra.remove("name"));
            let description = field(extra.remove("description"));
            services.rows.push(vec![
                Cell::Text(text(r, "id")?),
                Cell::Text(text(r, "type")?),
                Cell::Text(name),
                Cell::Text(description),
                Cell::Bool(boolean(r, "enabled")?),
                json(&extra),
            ]);
        }
        out.push(services);

        out.push(
            self.copy(
                "endpoints",
                "endpoint",
                "SELECT id, service_id, interface, url, region_id, CAST(enabled AS INTEGER) AS enabled, extra FROM endpoint ORDER BY id",
                &["id", "service_id", "interface", "url", "region_id", "enabled", "extra"],
                &[Conv::Text, Conv::Text, Conv::Text, Conv::Text, Conv::OptText, Conv::Bool, Conv::Extra],
            )
            .await?,
        );

        let rows = self
            .rows("SELECT endpoint_id, project_id FROM project_endpoint ORDER BY endpoint_id, project_id")
            .await?;
        let mut pe = table(
            "project endpoints",
            "project_endpoint",
            &["endpoint_id", "project_id"],
            rows.len(),
        );
        for r in &rows {
            let project_id = text(r, "project_id")?;
            if !project_ids.contains(&project_id) {
                pe.skipped
                    .push(format!("project {project_id} does not exist"));
                continue;
            }
            pe.rows.push(vec![
                Cell::Text(text(r, "endpoint_id")?),
                Cell::Text(project_id),
            ]);
        }
        out.push(pe);

        out.push(
            self.copy(
                "endpoint groups",
                "endpoint_group",
                "SELECT id, name, description, filters FROM endpoint_group ORDER BY id",
                &["id", "name", "description", "filters"],
                &[Conv::Text, Conv::Text, Conv::OptText, Conv::Text],
            )
            .await?,
        );

        out.push(
            self.copy(
                "project endpoint groups",
                "project_endpoint_group",
                "SELECT endpoint_group_id, project_id FROM project_endpoint_group ORDER BY endpoint_group_id, project_id",
                &["endpoint_group_id", "project_id"],
                &[Conv::Text, Conv::Text],
            )
            .await?,
        );

        out.push(self.revocations().await?);

        out.push(
            self.copy(
                "credentials",
                "credential",
                "SELECT id, user_id, project_id, encrypted_blob, type, key_hash, extra FROM credential ORDER BY id",
                &["id", "user_id", "project_id", "encrypted_blob", "type", "key_hash", "extra"],
                &[Conv::Text, Conv::Text, Conv::OptText, Conv::Text, Conv::Text, Conv::Text, Conv::Extra],
            )
            .await?,
        );

        out.push(
            self.copy(
                "registered limits",
                "registered_limit",
                "SELECT id, service_id, region_id, resource_name, default_limit, description FROM registered_limit ORDER BY id",
                &["id", "service_id", "region_id", "resource_name", "default_limit", "description"],
                &[Conv::Text, Conv::Text, Conv::OptText, Conv::Text, Conv::Int, Conv::OptText],
            )
            .await?,
        );

        out.push(
            self.copy(
                "limits",
                "unified_limit",
                "SELECT id, registered_limit_id, project_id, domain_id, resource_limit, description FROM \"limit\" ORDER BY id",
                &["id", "registered_limit_id", "project_id", "domain_id", "resource_limit", "description"],
                &[Conv::Text, Conv::Text, Conv::OptText, Conv::OptText, Conv::Int, Conv::OptText],
            )
            .await?,
        );

        out.push(self.policies().await?);
        out.push(
            self.copy(
                "endpoint policies",
                "policy_association",
                "SELECT id, policy_id, endpoint_id, service_id, region_id FROM policy_association ORDER BY id",
                &["id", "policy_id", "endpoint_id", "service_id", "region_id"],
                &[Conv::Text, Conv::Text, Conv::OptText, Conv::OptText, Conv::OptText],
            )
            .await?,
        );
        out.extend(self.domain_configs().await?);

        out.extend(self.trusts().await?);
        out.extend(self.application_credentials().await?);
        out.extend(self.oauth1().await?);

        for (source, family) in NOT_SUPPORTED {
            let rows = self
                .rows(&format!("SELECT COUNT(*) AS n FROM {source}"))
                .await?;
            let n = rows
                .first()
                .map(|r| super::int(r, "n"))
                .transpose()?
                .unwrap_or(0) as usize;
            let mut t = table(family, "", &[], n);
            if n > 0 {
                t.skipped = vec!["not imported yet".to_string(); n];
            }
            out.push(t);
        }
        Ok(out)
    }

    /// Local users with their current password (the newest `password` row), the
    /// earlier ones as history, their options and their login bookkeeping; then two
    /// summary families (user options, password history) for the report.
    async fn users(&self) -> StoreResult<Vec<ImportTable>> {
        let rows = self
            .rows("SELECT u.id, lu.name, u.domain_id, CAST(u.enabled AS INTEGER) AS enabled, u.default_project_id, u.extra, CAST(u.created_at AS TEXT) AS created_at, CAST(u.last_active_at AS TEXT) AS last_active_at, lu.id AS local_id, lu.failed_auth_count, CAST(lu.failed_auth_at AS TEXT) AS failed_auth_at FROM \"user\" u LEFT JOIN local_user lu ON lu.user_id = u.id ORDER BY u.id")
            .await?;
        let passwords = self
            .rows("SELECT local_user_id, password_hash, created_at_int, expires_at_int, CAST(self_service AS INTEGER) AS self_service FROM password ORDER BY local_user_id, created_at_int, id")
            .await?;
        let mut by_local: HashMap<i64, Vec<StoredPassword>> = HashMap::new();
        for p in &passwords {
            let Some(local) = opt_int(p, "local_user_id")? else {
                continue;
            };
            // Microseconds in Keystone; seconds here.
            by_local.entry(local).or_default().push(StoredPassword {
                hash: opt_text(p, "password_hash")?,
                created: opt_int(p, "created_at_int")?.map(|v| v / 1_000_000),
                expires: opt_int(p, "expires_at_int")?.map(|v| v / 1_000_000),
                self_service: boolean(p, "self_service")?,
            });
        }
        let option_rows = self
            .rows("SELECT user_id, option_id, option_value FROM user_option ORDER BY user_id, option_id")
            .await?;
        let mut options_read = table("user options", "", &[], option_rows.len());
        let mut options: HashMap<String, Map<String, Value>> = HashMap::new();
        for o in &option_rows {
            let user_id = text(o, "user_id")?;
            let option_id = text(o, "option_id")?;
            let Some(name) = USER_OPTIONS
                .iter()
                .find(|(id, _)| *id == option_id)
                .map(|(_, n)| *n)
            else {
                options_read.skipped.push(format!(
                    "option {option_id} ({}) is not supported",
                    if option_id.starts_with("MFA") {
                        "multi-factor authentication"
                    } else {
                        "unknown"
                    }
                ));
                continue;
            };
            let value = option_value(o)?;
            if value.is_null() {
                options_read
                    .skipped
                    .push(format!("option {name} is null (not set)"));
            } else {
                options
                    .entry(user_id)
                    .or_default()
                    .insert(name.to_string(), value);
            }
        }
        let mut history_read = table("password history", "", &[], 0);
        let mut users = table(
            "users",
            "users",
            &[
                "id",
                "name",
                "domain_id",
                "enabled",
                "default_project_id",
                "extra",
                "password_hash",
                "password_created_at",
                "password_expires_at",
                "created_at",
                "options",
                "failed_auth_count",
                "failed_auth_at",
                "last_active_at",
                "password_self_service",
                "password_history",
            ],
            rows.len(),
        );
        for r in &rows {
            let id = text(r, "id")?;
            let (Some(name), Some(local)) = (opt_text(r, "name")?, opt_int(r, "local_id")?) else {
                users
                    .skipped
                    .push(format!("user {id} is not a local user (federated or LDAP)"));
                continue;
            };
            let mut stored = by_local.remove(&local).unwrap_or_default();
            let current = stored.pop().unwrap_or_default();
            // Earlier hashes, oldest first, for unique_last_password_count.
            let history: Vec<Value> = stored
                .into_iter()
                .filter_map(|p| p.hash.map(Value::String))
                .collect();
            history_read.read += history.len();
            history_read.rows.extend(history.iter().map(|_| Vec::new()));
            let created_at = seconds(opt_text(r, "created_at")?)?.unwrap_or_default();
            // Keystone keeps a date; here, days since the epoch.
            let last_active =
                seconds(opt_text(r, "last_active_at")?)?.map(|s| s.div_euclid(86_400));
            users.rows.push(vec![
                Cell::Text(id.clone()),
                Cell::Text(name),
                Cell::Text(text(r, "domain_id")?),
                Cell::Bool(boolean(r, "enabled")?),
                Cell::opt_text(opt_text(r, "default_project_id")?),
                json(&extra_of(r)?),
                Cell::opt_text(current.hash),
                current.created.map_or(Cell::NullInt, Cell::Int),
                current.expires.map_or(Cell::NullInt, Cell::Int),
                Cell::Int(created_at),
                json(&{
                    let o = options.remove(&id).unwrap_or_default();
                    options_read.rows.extend(o.iter().map(|_| Vec::new()));
                    o
                }),
                Cell::Int(opt_int(r, "failed_auth_count")?.unwrap_or_default()),
                seconds(opt_text(r, "failed_auth_at")?)?.map_or(Cell::NullInt, Cell::Int),
                last_active.map_or(Cell::NullInt, Cell::Int),
                Cell::Bool(current.self_service),
                Cell::Text(Value::Array(history).to_string()),
            ]);
        }
        for (user_id, o) in options {
            options_read
                .skipped
                .extend(o.iter().map(|_| format!("user {user_id} is not imported")));
        }
        Ok(vec![users, options_read, history_read])
    }

    /// Roles, with their resource options (Keystone's `role_option`: `immutable`,
    /// kept where keystone-rs keeps it, under `options` in the role's attributes);
    /// then the project options, which keystone-rs does not implement, for the report.
    async fn roles(&self) -> StoreResult<Vec<ImportTable>> {
        let option_rows = self
            .rows("SELECT role_id, option_id, option_value FROM role_option ORDER BY role_id, option_id")
            .await?;
        let mut role_options = table("role options", "", &[], option_rows.len());
        let mut options: HashMap<String, Map<String, Value>> = HashMap::new();
        for o in &option_rows {
            let role_id = text(o, "role_id")?;
            match (text(o, "option_id")?.as_str(), option_value(o)?) {
                ("IMMU", Value::Null) => role_options
                    .skipped
                    .push("option immutable is null (not set)".into()),
                ("IMMU", v) => {
                    options
                        .entry(role_id)
                        .or_default()
                        .insert("immutable".into(), v);
                    role_options.rows.push(Vec::new());
                }
                (other, _) => role_options
                    .skipped
                    .push(format!("role option {other} is unknown")),
            }
        }
        let rows = self
            .rows("SELECT id, name, domain_id, description, extra FROM role ORDER BY id")
            .await?;
        let mut roles = table(
            "roles",
            "role",
            &["id", "name", "domain_id", "description", "extra"],
            rows.len(),
        );
        for r in &rows {
            let id = text(r, "id")?;
            let mut extra = extra_of(r)?;
            if let Some(o) = options.remove(&id) {
                extra.insert("options".into(), Value::Object(o));
            }
            roles.rows.push(vec![
                Cell::Text(id),
                Cell::Text(text(r, "name")?),
                Cell::Text(text(r, "domain_id")?),
                Cell::Text(opt_text(r, "description")?.unwrap_or_default()),
                json(&extra),
            ]);
        }
        let project_rows = self
            .rows("SELECT project_id, option_id, option_value FROM project_option ORDER BY project_id, option_id")
            .await?;
        let mut project_options = table("project options", "", &[], project_rows.len());
        for o in &project_rows {
            match option_value(o)? {
                // Unset or false: what keystone-rs's projects and domains always are.
                Value::Null | Value::Bool(false) => project_options.rows.push(Vec::new()),
                _ => project_options.skipped.push(format!(
                    "option {} of {} is not supported (immutable projects and domains)",
                    text(o, "option_id")?,
                    text(o, "project_id")?
                )),
            }
        }
        Ok(vec![roles, role_options, project_options])
    }

    /// Stored policies. Keystone keeps `blob` JSON-encoded (a JSON string, as the API
    /// takes it); keystone-rs keeps the API's string itself.
    async fn policies(&self) -> StoreResult<ImportTable> {
        let rows = self
            .rows("SELECT id, type, \"blob\", extra FROM policy ORDER BY id")
            .await?;
        let mut t = table(
            "policies",
            "policy",
            &["id", "type", "blob", "extra"],
            rows.len(),
        );
        for r in &rows {
            let raw = text(r, "blob")?;
            let blob = match serde_json::from_str::<Value>(&raw) {
                Ok(Value::String(s)) => s,
                Ok(other) => other.to_string(),
                Err(_) => raw,
            };
            t.rows.push(vec![
                Cell::Text(text(r, "id")?),
                Cell::Text(text(r, "type")?),
                Cell::Text(blob),
                json(&extra_of(r)?),
            ]);
        }
        Ok(t)
    }

    /// Domain configuration, whitelisted and sensitive options (values JSON-encoded
    /// in both). A domain whose identity driver is not `sql` (LDAP) is reported:
    /// keystone-rs has no such driver, and its users are not local ones.
    async fn domain_configs(&self) -> StoreResult<Vec<ImportTable>> {
        let mut out = Vec::new();
        let mut foreign_driver: HashSet<String> = HashSet::new();
        let mut read = Vec::new();
        for (family, source, target) in [
            (
                "domain configuration",
                "whitelisted_config",
                "whitelisted_config",
            ),
            (
                "domain config (sensitive)",
                "sensitive_config",
                "sensitive_config",
            ),
        ] {
            let rows = self
                .rows(&format!("SELECT domain_id, \"group\" AS group_name, \"option\" AS option_name, value FROM {source} ORDER BY domain_id, \"group\", \"option\""))
                .await?;
            for r in &rows {
                if text(r, "group_name")? == "identity" && text(r, "option_name")? == "driver" {
                    let driver: Value = serde_json::from_str(&text(r, "value")?)
                        .map_err(|_| err("a domain configuration value is not JSON"))?;
                    if driver != Value::String("sql".into()) {
                        foreign_driver.insert(text(r, "domain_id")?);
                    }
                }
            }
            read.push((family, target, rows));
        }
        for (family, target, rows) in read {
            let mut t = table(
                family,
                target,
                &["domain_id", "group_name", "option_name", "value"],
                rows.len(),
            );
            for r in &rows {
                let domain_id = text(r, "domain_id")?;
                if foreign_driver.contains(&domain_id) {
                    t.skipped.push(format!(
                        "domain {domain_id} uses an identity driver other than sql (LDAP), which keystone-rs does not have"
                    ));
                    continue;
                }
                let value = text(r, "value")?;
                serde_json::from_str::<Value>(&value)
                    .map_err(|_| err("a domain configuration value is not JSON"))?;
                t.rows.push(vec![
                    Cell::Text(domain_id),
                    Cell::Text(text(r, "group_name")?),
                    Cell::Text(text(r, "option_name")?),
                    Cell::Text(value),
                ]);
            }
            out.push(t);
        }
        Ok(out)
    }

    /// Live trusts and their roles. Keystone soft-deletes a trust (`deleted_at`);
    /// keystone-rs removes it, so a deleted one is reported, not imported.
    async fn trusts(&self) -> StoreResult<Vec<ImportTable>> {
        let rows = self
            .rows("SELECT id, trustor_user_id, trustee_user_id, project_id, CAST(impersonation AS INTEGER) AS impersonation, CAST(deleted_at AS TEXT) AS deleted_at, CAST(expires_at AS TEXT) AS expires_at, expires_at_int, remaining_uses, extra, redelegated_trust_id, redelegation_count FROM trust ORDER BY id")
            .await?;
        let mut trusts = table(
            "trusts",
            "trust",
            &[
                "id",
                "trustor_user_id",
                "trustee_user_id",
                "project_id",
                "impersonation",
                "expires_at_us",
                "remaining_uses",
                "redelegated_trust_id",
                "redelegation_count",
                "extra",
            ],
            rows.len(),
        );
        let mut live: HashSet<String> = HashSet::new();
        for r in &rows {
            let id = text(r, "id")?;
            if opt_text(r, "deleted_at")?.is_some() {
                trusts.skipped.push(format!("trust {id} is deleted"));
                continue;
            }
            // Microseconds (DateTimeInt); rows older than that column have only the DATETIME.
            let expires_us = match opt_int(r, "expires_at_int")? {
                Some(us) => Some(us),
                None => seconds(opt_text(r, "expires_at")?)?.map(|s| s * 1_000_000),
            };
            live.insert(id.clone());
            // Keystone's create leaves the requested `roles` in `extra` too; trust_role
            // is what counts (its API drops or replaces that copy).
            let mut extra = extra_of(r)?;
            extra.remove("roles");
            trusts.rows.push(vec![
                Cell::Text(id),
                Cell::Text(text(r, "trustor_user_id")?),
                Cell::Text(text(r, "trustee_user_id")?),
                Cell::opt_text(opt_text(r, "project_id")?),
                Cell::Bool(boolean(r, "impersonation")?),
                expires_us.map_or(Cell::NullInt, Cell::Int),
                opt_int(r, "remaining_uses")?.map_or(Cell::NullInt, Cell::Int),
                Cell::opt_text(opt_text(r, "redelegated_trust_id")?),
                opt_int(r, "redelegation_count")?.map_or(Cell::NullInt, Cell::Int),
                json(&extra),
            ]);
        }
        let rows = self
            .rows("SELECT trust_id, role_id FROM trust_role ORDER BY trust_id, role_id")
            .await?;
        let mut roles = table(
            "trust roles",
            "trust_role",
            &["trust_id", "role_id"],
            rows.len(),
        );
        for r in &rows {
            let trust_id = text(r, "trust_id")?;
            if !live.contains(&trust_id) {
                roles.skipped.push(format!("trust {trust_id} is deleted"));
                continue;
            }
            roles
                .rows
                .push(vec![Cell::Text(trust_id), Cell::Text(text(r, "role_id")?)]);
        }
        Ok(vec![trusts, roles])
    }

    /// Application credentials, their roles and access rules. Keystone links them by
    /// internal integer keys; keystone-rs by the public ids, so the links are
    /// translated. The secret hash is Keystone's (passlib: bcrypt by default) and is
    /// verified as such at login. Keystone keeps no creation time: the import's is used.
    async fn application_credentials(&self) -> StoreResult<Vec<ImportTable>> {
        let now = chrono::Utc::now().timestamp();
        let rows = self
            .rows("SELECT internal_id, id, name, secret_hash, description, user_id, project_id, system, expires_at, CAST(unrestricted AS INTEGER) AS unrestricted FROM application_credential ORDER BY internal_id")
            .await?;
        let mut creds = table(
            "application credentials",
            "application_credential",
            &[
                "id",
                "name",
                "secret_hash",
                "description",
                "user_id",
                "project_id",
                "system",
                "expires_at",
                "unrestricted",
                "created_at",
            ],
            rows.len(),
        );
        let mut cred_ids: HashMap<i64, String> = HashMap::new();
        for r in &rows {
            let id = text(r, "id")?;
            cred_ids.insert(super::int(r, "internal_id")?, id.clone());
            creds.rows.push(vec![
                Cell::Text(id),
                Cell::Text(text(r, "name")?),
                Cell::Text(text(r, "secret_hash")?),
                Cell::opt_text(opt_text(r, "description")?),
                Cell::Text(text(r, "user_id")?),
                Cell::opt_text(opt_text(r, "project_id")?),
                Cell::opt_text(opt_text(r, "system")?),
                // Microseconds (DateTimeInt), as stored here.
                opt_int(r, "expires_at")?.map_or(Cell::NullInt, Cell::Int),
                Cell::Bool(opt_int(r, "unrestricted")?.unwrap_or(0) != 0),
                Cell::Int(now),
            ]);
        }
        let link = |ids: &HashMap<i64, String>, internal: i64, what: &str| {
            ids.get(&internal).cloned().ok_or_else(|| {
                err(format!(
                    "{what} names application credential {internal}, which does not exist"
                ))
            })
        };

        let rows = self
            .rows("SELECT application_credential_id, role_id FROM application_credential_role ORDER BY application_credential_id, role_id")
            .await?;
        let mut roles = table(
            "application credential roles",
            "application_credential_role",
            &["application_credential_id", "role_id"],
            rows.len(),
        );
        for r in &rows {
            let cred = link(
                &cred_ids,
                super::int(r, "application_credential_id")?,
                "a role link",
            )?;
            roles
                .rows
                .push(vec![Cell::Text(cred), Cell::Text(text(r, "role_id")?)]);
        }

        let rows = self
            .rows("SELECT id, external_id, user_id, service, path, method FROM access_rule ORDER BY id")
            .await?;
        let mut rules = table(
            "access rules",
            "access_rule",
            &["id", "user_id", "service", "path", "method"],
            rows.len(),
        );
        let mut rule_ids: HashMap<i64, String> = HashMap::new();
        for r in &rows {
            let internal = super::int(r, "id")?;
            let (Some(id), Some(user_id)) = (opt_text(r, "external_id")?, opt_text(r, "user_id")?)
            else {
                rules
                    .skipped
                    .push(format!("access rule {internal} has no public id or owner"));
                continue;
            };
            rule_ids.insert(internal, id.clone());
            rules.rows.push(vec![
                Cell::Text(id),
                Cell::Text(user_id),
                Cell::Text(opt_text(r, "service")?.unwrap_or_default()),
                Cell::Text(opt_text(r, "path")?.unwrap_or_default()),
                Cell::Text(opt_text(r, "method")?.unwrap_or_default()),
            ]);
        }

        let rows = self
            .rows("SELECT application_credential_id, access_rule_id FROM application_credential_access_rule ORDER BY application_credential_id, access_rule_id")
            .await?;
        let mut links = table(
            "application credential access rules",
            "application_credential_access_rule",
            &["application_credential_id", "access_rule_id"],
            rows.len(),
        );
        for r in &rows {
            let cred = link(
                &cred_ids,
                super::int(r, "application_credential_id")?,
                "an access-rule link",
            )?;
            let internal = super::int(r, "access_rule_id")?;
            let Some(rule) = rule_ids.get(&internal) else {
                links
                    .skipped
                    .push(format!("access rule {internal} was not imported"));
                continue;
            };
            links
                .rows
                .push(vec![Cell::Text(cred), Cell::Text(rule.clone())]);
        }
        Ok(vec![creds, roles, rules, links])
    }

    /// OAuth1 consumers, request tokens and access tokens. Keystone keeps the secrets
    /// in the clear (HMAC-SHA1 needs them) and so does keystone-rs; its `expires_at`
    /// is an ISO 8601 string, here microseconds.
    async fn oauth1(&self) -> StoreResult<Vec<ImportTable>> {
        let rows = self
            .rows("SELECT id, description, secret, extra FROM consumer ORDER BY id")
            .await?;
        let mut consumers = table(
            "OAuth1 consumers",
            "consumer",
            &["id", "description", "secret", "extra"],
            rows.len(),
        );
        for r in &rows {
            consumers.rows.push(vec![
                Cell::Text(text(r, "id")?),
                Cell::opt_text(opt_text(r, "description")?),
                Cell::Text(text(r, "secret")?),
                json(&extra_of(r)?),
            ]);
        }
        let rows = self
            .rows("SELECT id, request_secret, verifier, authorizing_user_id, requested_project_id, role_ids, consumer_id, expires_at FROM request_token ORDER BY id")
            .await?;
        let mut requests = table(
            "OAuth1 request tokens",
            "request_token",
            &[
                "id",
                "request_secret",
                "verifier",
                "authorizing_user_id",
                "requested_project_id",
                "role_ids",
                "consumer_id",
                "expires_at_us",
            ],
            rows.len(),
        );
        for r in &rows {
            requests.rows.push(vec![
                Cell::Text(text(r, "id")?),
                Cell::Text(text(r, "request_secret")?),
                Cell::opt_text(opt_text(r, "verifier")?),
                Cell::opt_text(opt_text(r, "authorizing_user_id")?),
                Cell::Text(text(r, "requested_project_id")?),
                Cell::opt_text(opt_text(r, "role_ids")?),
                Cell::Text(text(r, "consumer_id")?),
                iso_micros(opt_text(r, "expires_at")?)?.map_or(Cell::NullInt, Cell::Int),
            ]);
        }
        let rows = self
            .rows("SELECT id, access_secret, authorizing_user_id, project_id, role_ids, consumer_id, expires_at FROM access_token ORDER BY id")
            .await?;
        let mut access = table(
            "OAuth1 access tokens",
            "access_token",
            &[
                "id",
                "access_secret",
                "authorizing_user_id",
                "project_id",
                "role_ids",
                "consumer_id",
                "expires_at_us",
            ],
            rows.len(),
        );
        for r in &rows {
            access.rows.push(vec![
                Cell::Text(text(r, "id")?),
                Cell::Text(text(r, "access_secret")?),
                Cell::Text(text(r, "authorizing_user_id")?),
                Cell::Text(text(r, "project_id")?),
                Cell::Text(text(r, "role_ids")?),
                Cell::Text(text(r, "consumer_id")?),
                iso_micros(opt_text(r, "expires_at")?)?.map_or(Cell::NullInt, Cell::Int),
            ]);
        }
        Ok(vec![consumers, requests, access])
    }

    async fn revocations(&self) -> StoreResult<ImportTable> {
        let rows = self
            .rows("SELECT domain_id, project_id, user_id, role_id, trust_id, consumer_id, access_token_id, audit_id, audit_chain_id, CAST(expires_at AS TEXT) AS expires_at, CAST(issued_before AS TEXT) AS issued_before, CAST(revoked_at AS TEXT) AS revoked_at FROM revocation_event ORDER BY id")
            .await?;
        let mut t = table(
            "revocation events",
            "revocation_event",
            &[
                "domain_id",
                "project_id",
                "user_id",
                "role_id",
                "trust_id",
                "consumer_id",
                "access_token_id",
                "audit_id",
                "audit_chain_id",
                "expires_at",
                "issued_before",
                "revoked_at",
            ],
            rows.len(),
        );
        for r in &rows {
            let mut cells = Vec::new();
            for c in [
                "domain_id",
                "project_id",
                "user_id",
                "role_id",
                "trust_id",
                "consumer_id",
                "access_token_id",
                "audit_id",
                "audit_chain_id",
            ] {
                cells.push(Cell::opt_text(opt_text(r, c)?));
            }
            cells.push(seconds(opt_text(r, "expires_at")?)?.map_or(Cell::NullInt, Cell::Int));
            let issued = seconds(opt_text(r, "issued_before")?)?
                .ok_or_else(|| err("a revocation event without issued_before"))?;
            cells.push(Cell::Int(issued));
            cells.push(Cell::Int(
                seconds(opt_text(r, "revoked_at")?)?.unwrap_or(issued),
            ));
            t.rows.push(cells);
        }
        Ok(t)
    }
}

impl std::fmt::Debug for KeystoneSource {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("KeystoneSource").finish_non_exhaustive()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn oauth1_expiry_strings() {
        // Keystone's utils.isotime(subsecond=True).
        assert_eq!(
            iso_micros(Some("2026-12-07T00:38:00.092487Z".into())).expect("t"),
            Some(1_796_603_880_092_487)
        );
        assert_eq!(iso_micros(None).expect("none"), None);
        assert!(iso_micros(Some("tomorrow".into())).is_err());
    }

    #[test]
    fn times_and_parent_order() {
        assert_eq!(
            seconds(Some("2026-12-07 00:38:00.092487".into())).expect("t"),
            Some(1_796_603_880)
        );
        assert_eq!(seconds(None).expect("none"), None);
        assert!(seconds(Some("yesterday".into())).is_err());
        let rows = vec![
            ("c".to_string(), Some("b".to_string()), vec![Cell::Int(3)]),
            ("b".to_string(), Some("a".to_string()), vec![Cell::Int(2)]),
            ("a".to_string(), None, vec![Cell::Int(1)]),
            (
                "d".to_string(),
                Some("elsewhere".to_string()),
                vec![Cell::Int(4)],
            ),
        ];
        assert_eq!(
            parents_first(rows),
            vec![
                vec![Cell::Int(1)],
                vec![Cell::Int(4)],
                vec![Cell::Int(2)],
                vec![Cell::Int(3)]
            ]
        );
    }
}
