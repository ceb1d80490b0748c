//! Random schemas of the shapes real services have, and random data in
//! them, written with their catalog: then one member is erased, and no cell
//! of any row that is not provably that member's may change, nor any other
//! member's object go; every row that is provably theirs is erased.
//!
//! A schema has one to three client tables (keys of one column, bigint,
//! uuid or text, or of two, `(id, day)`; ids from separate counters, so
//! they collide across tables) and one to three features, each reached from
//! each client table by a link drawn at random: the feature row pointing at
//! the client row, the client row pointing at the feature row (through a
//! column of the feature key's type, or text holding digits with a cast), or
//! a join table; a feature may have a task table. Data: members' requests,
//! some copied into a second client table (two client rows, one feature
//! row), some feature rows claimed by a second member as well (which must be
//! reported as `shared_row` and left alone), references as `{bucket, key}`
//! objects in json, jsonb or text columns, and as bare keys.
//!
//! On PostgreSQL (the richer type system); each case is a fresh database.

use std::collections::{BTreeMap, BTreeSet};

use lethe::references::ObjectRef;
use lethe::store::{Backed, Backend, Store};
use proptest::prelude::*;
use proptest::test_runner::{Config as ProptestConfig, TestCaseError, TestRunner};
use serde_json::{Map, Value, json};
use sqlx::AssertSqlSafe;

use crate::app::{ExampleService, TestApp};

const BUCKET: &str = "lethe-example-results";

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum KeyShape {
    Bigint,
    Uuid,
    Text,
    /// `(id bigint, day date)`; `id` alone is not unique by any index.
    Composite,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Link {
    FeatureToClient,
    ClientToFeature,
    /// The client column is text holding the feature's bigint key.
    ClientToFeatureCast,
    Join,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Payload {
    Jsonb,
    Json,
    Text,
}

#[derive(Debug, Clone)]
struct Spec {
    clients: Vec<KeyShape>,
    /// Per feature: its key shape (never composite), payload column type,
    /// whether it has a task table, and its link from each client table.
    features: Vec<(KeyShape, Payload, bool, Vec<Link>)>,
    requests: Vec<Request>,
}

/// A request: (member, client table, feature, copied into client table,
/// also claimed by member).
type Request = (usize, usize, usize, Option<usize>, Option<usize>);

fn spec() -> impl Strategy<Value = Spec> {
    let key = prop_oneof![
        Just(KeyShape::Bigint),
        Just(KeyShape::Uuid),
        Just(KeyShape::Text),
        Just(KeyShape::Composite)
    ];
    let feature_key = prop_oneof![
        Just(KeyShape::Bigint),
        Just(KeyShape::Uuid),
        Just(KeyShape::Text)
    ];
    let payload = prop_oneof![
        Just(Payload::Jsonb),
        Just(Payload::Json),
        Just(Payload::Text)
    ];
    let link = prop_oneof![
        Just(Link::FeatureToClient),
        Just(Link::ClientToFeature),
        Just(Link::ClientToFeatureCast),
        Just(Link::Join)
    ];
    (
        prop::collection::vec(key, 1..=3),
        prop::collection::vec(
            (
                feature_key,
                payload,
                any::<bool>(),
                prop::collection::vec(link, 3),
            ),
            1..=3,
        ),
    )
        .prop_flat_map(|(clients, features)| {
            let (nc, nf) = (clients.len(), features.len());
            let request = (
                0..3usize,
                0..nc,
                0..nf,
                prop::option::weighted(0.2, 0..nc),
                prop::option::weighted(0.15, 0..3usize),
            );
            (
                Just(clients),
                Just(features),
                prop::collection::vec(request, 4..14),
            )
        })
        .prop_map(|(clients, features, requests)| {
            let features = features
                .into_iter()
                .map(|(key, payload, task, links)| {
                    let links = links
                        .into_iter()
                        .take(clients.len())
                        .map(|link| match (link, key) {
                            // Text holding digits needs a bigint key.
                            (Link::ClientToFeatureCast, k) if k != KeyShape::Bigint => {
                                Link::ClientToFeature
                            }
                            (link, _) => link,
                        })
                        .collect();
                    (key, payload, task, links)
                })
                .collect();
            Spec {
                clients,
                features,
                requests,
            }
        })
}

/// The SQL type of a one-column key.
fn key_type(shape: KeyShape) -> &'static str {
    match shape {
        KeyShape::Bigint | KeyShape::Composite => "bigint",
        KeyShape::Uuid => "uuid",
        KeyShape::Text => "text",
    }
}

fn key_value(shape: KeyShape, n: usize) -> String {
    match shape {
        KeyShape::Bigint | KeyShape::Composite => n.to_string(),
        KeyShape::Uuid => uuid::Uuid::from_u64_pair(7, n as u64).to_string(),
        KeyShape::Text => format!("k{n}"),
    }
}

fn schema_sql(spec: &Spec) -> String {
    let mut sql = String::new();
    for (f, (key, payload, task, _)) in spec.features.iter().enumerate() {
        let payload = match payload {
            Payload::Jsonb => "jsonb",
            Payload::Json => "json",
            Payload::Text => "text",
        };
        let mut columns = vec![
            format!("id {} PRIMARY KEY", key_type(*key)),
            format!("payload {payload}"),
            "note text".to_owned(),
        ];
        for (c, link) in spec.features[f].3.iter().enumerate() {
            if *link == Link::FeatureToClient {
                columns.push(format!("c{c}_ref {}", key_type(spec.clients[c])));
            }
        }
        sql.push_str(&format!("CREATE TABLE f{f} ({});\n", columns.join(", ")));
        for (c, link) in spec.features[f].3.iter().enumerate() {
            match link {
                Link::FeatureToClient => sql.push_str(&format!("CREATE INDEX ON f{f} (c{c}_ref);\n")),
                Link::Join => sql.push_str(&format!(
                    "CREATE TABLE j{c}_{f} (c {}, f {} NOT NULL, PRIMARY KEY (c, f));\nCREATE INDEX ON j{c}_{f} (f);\n",
                    key_type(spec.clients[c]),
                    key_type(*key)
                )),
                _ => {}
            }
        }
        if *task {
            sql.push_str(&format!(
                "CREATE TABLE t{f} (id bigint PRIMARY KEY, feature {} NOT NULL, out_key text);\nCREATE INDEX ON t{f} (feature);\n",
                key_type(*key)
            ));
        }
    }
    for (c, shape) in spec.clients.iter().enumerate() {
        let mut columns = match shape {
            KeyShape::Composite => vec![
                "id bigint NOT NULL".to_owned(),
                "day date NOT NULL".to_owned(),
            ],
            other => vec![format!("id {} PRIMARY KEY", key_type(*other))],
        };
        columns.extend([
            "member text".to_owned(),
            "kind text NOT NULL".to_owned(),
            "ip text".to_owned(),
        ]);
        for (f, feature) in spec.features.iter().enumerate() {
            match feature.3[c] {
                Link::ClientToFeature => columns.push(format!("f{f}_ref {}", key_type(feature.0))),
                Link::ClientToFeatureCast => columns.push(format!("f{f}_ref text")),
                _ => {}
            }
        }
        if *shape == KeyShape::Composite {
            columns.push("PRIMARY KEY (id, day)".to_owned());
        }
        sql.push_str(&format!(
            "CREATE TABLE c{c} ({});\nCREATE INDEX ON c{c} (member);\nCREATE INDEX ON c{c} (id);\n",
            columns.join(", ")
        ));
        for (f, feature) in spec.features.iter().enumerate() {
            if matches!(
                feature.3[c],
                Link::ClientToFeature | Link::ClientToFeatureCast
            ) {
                sql.push_str(&format!("CREATE INDEX ON c{c} (f{f}_ref);\n"));
            }
        }
    }
    sql
}

fn catalog(spec: &Spec, dir: &std::path::Path) {
    let mut main = format!("name = \"random\"\n[storage]\nbuckets = [\"{BUCKET}\"]\n");
    for (c, shape) in spec.clients.iter().enumerate() {
        let key = match shape {
            KeyShape::Composite => {
                "[\"id\", \"day\"]\nlink = { client_column = \"id\", duplicates = \"member_only\" }"
                    .to_owned()
            }
            _ => "\"id\"".to_owned(),
        };
        main.push_str(&format!(
            "[[clients]]\ntable = \"c{c}\"\nkey = {key}\nsubject = \"member\"\nfeature_type = \"kind\"\n[clients.mask]\nmember = \"null\"\nip = \"null\"\n"
        ));
    }
    std::fs::write(dir.join("catalog.toml"), main).unwrap();
    std::fs::create_dir_all(dir.join("features")).unwrap();
    for (f, (_, payload, task, links)) in spec.features.iter().enumerate() {
        let mut text = format!("types = [\"T{f}\"]\n[feature]\ntable = \"f{f}\"\nkey = \"id\"\n");
        for (c, link) in links.iter().enumerate() {
            text.push_str(&format!("[[feature.links]]\nclients = [\"c{c}\"]\n"));
            text.push_str(&match link {
                Link::FeatureToClient => format!("kind = \"feature_to_client\"\nfeature_column = \"c{c}_ref\"\nclient_column = \"id\"\n"),
                Link::ClientToFeature => format!("kind = \"client_to_feature\"\nclient_column = \"f{f}_ref\"\n"),
                Link::ClientToFeatureCast => format!("kind = \"client_to_feature\"\nclient_column = \"f{f}_ref\"\ncast = \"bigint\"\n"),
                Link::Join => format!(
                    "kind = \"join\"\njoin = {{ table = \"j{c}_{f}\", client = \"c\", feature = \"f\" }}\nclient_column = \"id\"\n"
                ),
            });
            if spec.clients[c] == KeyShape::Composite
                && *link != Link::ClientToFeature
                && *link != Link::ClientToFeatureCast
            {
                text.push_str("duplicates = \"member_only\"\n");
            }
        }
        let mask = match payload {
            Payload::Text => "null",
            _ => "{}",
        };
        text.push_str(&format!(
            "[[feature.references]]\ncolumn = \"payload\"\npaths = [\"file\"]\n[feature.mask]\npayload = \"{mask}\"\nnote = \"null\"\n"
        ));
        if *task {
            text.push_str(&format!(
                "[task]\ntable = \"t{f}\"\nkey = \"id\"\nfeature_id = \"feature\"\n[[task.references]]\ncolumn = \"out_key\"\nform = \"key\"\nbucket = \"{BUCKET}\"\n[task.mask]\nout_key = \"null\"\n"
            ));
        }
        std::fs::write(dir.join(format!("features/f{f}.toml")), text).unwrap();
    }
}

/// What the generator wrote, for the assertions.
#[derive(Debug, Default)]
struct World {
    /// (table, key) -> the members claiming the row (client rows: their own member).
    claims: BTreeMap<(String, String), BTreeSet<usize>>,
    /// Object -> the feature or task row whose payload names it.
    objects: BTreeMap<ObjectRef, (String, String)>,
    /// Feature row -> its task row.
    tasks: BTreeMap<(String, String), (String, String)>,
}

async fn exec(store: &Store, sql: &str) {
    let Backed::Postgres(pool) = store.db() else {
        unreachable!()
    };
    sqlx::raw_sql(AssertSqlSafe(sql.to_owned()))
        .execute(pool)
        .await
        .unwrap();
}

async fn insert(store: &Store, table: &str, values: &[(String, &str, Option<String>)]) {
    let Backed::Postgres(pool) = store.db() else {
        unreachable!()
    };
    let columns: Vec<&str> = values.iter().map(|(c, _, _)| c.as_str()).collect();
    let params: Vec<String> = values
        .iter()
        .enumerate()
        .map(|(i, (_, ty, _))| format!("CAST(${} AS {ty})", i + 1))
        .collect();
    let sql = format!(
        "INSERT INTO {table} ({}) VALUES ({})",
        columns.join(", "),
        params.join(", ")
    );
    let mut query = sqlx::query(AssertSqlSafe(sql));
    for (_, _, value) in values {
        query = query.bind(value.clone());
    }
    query.execute(pool).await.unwrap();
}

/// Writes a client row of `member` for `feature` row `fkey`, linked its
/// way; when the feature row already points at a client row of this table,
/// the new row repeats that id (on another day) where the key allows, else
/// it is not written.
#[allow(clippy::too_many_arguments)]
async fn client_row(
    app: &TestApp,
    spec: &Spec,
    world: &mut World,
    counters: &mut [usize],
    pointed: &mut BTreeMap<(usize, usize, String), String>,
    c: usize,
    f: usize,
    fkey: &str,
    member: usize,
) {
    let shape = spec.clients[c];
    let link = spec.features[f].3[c];
    counters[c] += 1;
    let n = counters[c];
    let mut id = key_value(shape, n);
    if link == Link::FeatureToClient
        && let Some(existing) = pointed.get(&(f, c, fkey.to_owned()))
    {
        if shape != KeyShape::Composite {
            return;
        }
        id = existing.clone();
    }
    let column = |name: &str| name.to_owned();
    let mut values: Vec<(String, &str, Option<String>)> = vec![
        (column("id"), key_type(shape), Some(id.clone())),
        (column("member"), "text", Some(format!("m{member}"))),
        (column("kind"), "text", Some(format!("T{f}"))),
        (column("ip"), "text", Some(format!("10.0.{c}.{n}"))),
    ];
    let day = format!("2026-01-{:02}", 1 + n % 28);
    let key = if shape == KeyShape::Composite {
        values.push((column("day"), "date", Some(day.clone())));
        serde_json::to_string(&[id.clone(), day]).unwrap()
    } else {
        id.clone()
    };
    let feature_key_type = key_type(spec.features[f].0);
    match link {
        Link::ClientToFeature => {
            values.push((format!("f{f}_ref"), feature_key_type, Some(fkey.to_owned())))
        }
        Link::ClientToFeatureCast => {
            values.push((format!("f{f}_ref"), "text", Some(fkey.to_owned())))
        }
        Link::FeatureToClient => {
            exec(
                app.store(),
                &format!(
                    "UPDATE f{f} SET c{c}_ref = CAST('{id}' AS {}) WHERE id = CAST('{fkey}' AS {feature_key_type})",
                    key_type(shape)
                ),
            )
            .await;
            pointed.insert((f, c, fkey.to_owned()), id.clone());
        }
        Link::Join => {
            insert(
                app.store(),
                &format!("j{c}_{f}"),
                &[
                    (column("c"), key_type(shape), Some(id.clone())),
                    (column("f"), feature_key_type, Some(fkey.to_owned())),
                ],
            )
            .await
        }
    }
    insert(app.store(), &format!("c{c}"), &values).await;
    world
        .claims
        .entry((format!("c{c}"), key))
        .or_default()
        .insert(member);
    world
        .claims
        .entry((format!("f{f}"), fkey.to_owned()))
        .or_default()
        .insert(member);
    if let Some(task) = world
        .tasks
        .get(&(format!("f{f}"), fkey.to_owned()))
        .cloned()
    {
        world.claims.entry(task).or_default().insert(member);
    }
}

async fn populate(app: &TestApp, spec: &Spec) -> World {
    exec(app.store(), &schema_sql(spec)).await;
    let mut world = World::default();
    let mut client_counters = vec![0usize; spec.clients.len()];
    let mut pointed = BTreeMap::new();
    for (n, (member, c, f, copy, shared)) in spec.requests.iter().enumerate() {
        let (fshape, payload, task, links) = &spec.features[*f];
        let fkey = key_value(*fshape, n + 1);
        let object = ObjectRef {
            bucket: BUCKET.into(),
            key: format!("m{member}/{n}/파일 {n}+a.png"),
        };
        let reference = json!({"file": {"bucket": object.bucket, "key": object.key}, "size": n});
        let payload_type = match payload {
            Payload::Jsonb => "jsonb",
            Payload::Json => "json",
            Payload::Text => "text",
        };
        insert(
            app.store(),
            &format!("f{f}"),
            &[
                ("id".into(), key_type(*fshape), Some(fkey.clone())),
                ("payload".into(), payload_type, Some(reference.to_string())),
                ("note".into(), "text", Some(format!("secret of m{member}"))),
            ],
        )
        .await;
        app.s3.put(&object.bucket, &object.key, b"x".to_vec()).await;
        world
            .objects
            .insert(object, (format!("f{f}"), fkey.clone()));
        if *task {
            let out = format!("out/m{member}/{n}.png");
            insert(
                app.store(),
                &format!("t{f}"),
                &[
                    ("id".into(), "bigint", Some((n + 1).to_string())),
                    ("feature".into(), key_type(*fshape), Some(fkey.clone())),
                    ("out_key".into(), "text", Some(out.clone())),
                ],
            )
            .await;
            app.s3.put(BUCKET, &out, b"x".to_vec()).await;
            let task_row = (format!("t{f}"), (n + 1).to_string());
            world
                .tasks
                .insert((format!("f{f}"), fkey.clone()), task_row.clone());
            world.objects.insert(
                ObjectRef {
                    bucket: BUCKET.into(),
                    key: out,
                },
                task_row,
            );
        }
        let _ = links;
        let (world_ref, counters, pointed) = (&mut world, &mut client_counters, &mut pointed);
        client_row(
            app, spec, world_ref, counters, pointed, *c, *f, &fkey, *member,
        )
        .await;
        if let Some(copy) = copy {
            client_row(
                app, spec, world_ref, counters, pointed, *copy, *f, &fkey, *member,
            )
            .await;
        }
        if let Some(other) = shared {
            let table = (*c + 1) % spec.clients.len();
            client_row(
                app, spec, world_ref, counters, pointed, table, *f, &fkey, *other,
            )
            .await;
        }
    }
    world
}

async fn snapshot(app: &TestApp, spec: &Spec) -> BTreeMap<(String, String), Map<String, Value>> {
    let mut tables: Vec<(String, Vec<&str>)> = Vec::new();
    for (c, shape) in spec.clients.iter().enumerate() {
        tables.push((
            format!("c{c}"),
            if *shape == KeyShape::Composite {
                vec!["id", "day"]
            } else {
                vec!["id"]
            },
        ));
    }
    for (f, feature) in spec.features.iter().enumerate() {
        tables.push((format!("f{f}"), vec!["id"]));
        if feature.2 {
            tables.push((format!("t{f}"), vec!["id"]));
        }
    }
    let Backed::Postgres(pool) = app.store().db() else {
        unreachable!()
    };
    let mut rows = BTreeMap::new();
    for (table, key) in tables {
        let texts: Vec<String> = sqlx::query_scalar(AssertSqlSafe(format!(
            "SELECT row_to_json(t)::text FROM {table} t"
        )))
        .fetch_all(pool)
        .await
        .unwrap();
        for text in texts {
            let Value::Object(row) = serde_json::from_str(&text).unwrap() else {
                unreachable!()
            };
            let plain = |v: &Value| match v {
                Value::String(s) => s.clone(),
                other => other.to_string(),
            };
            let name = if key.len() == 1 {
                plain(&row[key[0]])
            } else {
                serde_json::to_string(&key.iter().map(|k| plain(&row[*k])).collect::<Vec<_>>())
                    .unwrap()
            };
            rows.insert((table.clone(), name), row);
        }
    }
    rows
}

async fn erase_one_member(spec: Spec) -> Result<(), TestCaseError> {
    let dir = tempfile::tempdir().unwrap();
    catalog(&spec, dir.path());
    let path = dir.path().to_owned();
    let app = TestApp::start_service(Backend::Postgres, ExampleService::Seed, move |c| {
        c.catalog = path
    })
    .await;
    let world = populate(&app, &spec).await;
    let before = snapshot(&app, &spec).await;
    let status = app.erase_to_done("m0").await;

    let after = snapshot(&app, &spec).await;
    let deleted: BTreeSet<ObjectRef> = crate::atelier::deleted(&app);
    let mine = |row: &(String, String)| {
        world
            .claims
            .get(row)
            .is_some_and(|m| m.len() == 1 && m.contains(&0))
    };
    for (row, cells) in &before {
        if mine(row) {
            let now = &after[row];
            let changed: Vec<&String> = cells.keys().filter(|k| cells[*k] != now[*k]).collect();
            prop_assert!(
                !changed.is_empty() || cells.get("member").is_some_and(Value::is_null),
                "{row:?} is only m0's but was not erased: {spec:?}"
            );
        } else {
            prop_assert_eq!(
                &after[row],
                cells,
                "{:?} is not only m0's but changed: {:?}",
                row,
                spec
            );
        }
    }
    for (object, row) in &world.objects {
        let exists = app.s3.exists(&object.bucket, &object.key).await;
        if mine(row) {
            prop_assert!(
                !exists && deleted.contains(object),
                "{object} of m0 survived: {spec:?}"
            );
        } else {
            prop_assert!(
                exists && !deleted.contains(object),
                "{object} is not only m0's but was deleted: {spec:?}"
            );
        }
    }
    let shared = world
        .claims
        .iter()
        .filter(|((table, _), members)| {
            table.starts_with('f') && members.contains(&0) && members.len() > 1
        })
        .count();
    let reported = status
        .anomalies
        .iter()
        .filter(|a| a.kind == "shared_row")
        .count();
    prop_assert_eq!(reported, shared, "{:#?}", status.anomalies);
    Ok(())
}

#[test]
fn erasing_one_member_of_a_random_schema_changes_nothing_of_anyone_else() {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let cases = std::env::var("LETHE_SCHEMA_CASES")
        .ok()
        .and_then(|n| n.parse().ok())
        .unwrap_or(24);
    let mut runner = TestRunner::new(ProptestConfig {
        cases,
        // Each case is a database and an erasure: shrinking would take long.
        max_shrink_iters: 0,
        failure_persistence: None,
        ..ProptestConfig::default()
    });
    runner
        .run(&spec(), |spec| runtime.block_on(erase_one_member(spec)))
        .unwrap();
}
