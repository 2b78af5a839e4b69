//! `ferry schema` and `create_tables`: generated `CREATE TABLE` statements, applied to the real
//! PostgreSQL, then used by real migrations; target introspection of keys, indexes and server.

use std::collections::BTreeMap;
use std::path::Path;
use std::process::Output;

use ferry_connectors::yugabyte::{ServerInfo, TargetKeys};

use crate::support;
use crate::torture;

const KEYSPACE: &str = "ferry_schema";

/// Runs `ferry schema -c CONFIG [ARGS…]`, asserting it succeeded.
fn schema_ok(config: &Path, args: &[&str]) -> Output {
    let mut all = vec!["schema", "-c", config.to_str().expect("utf-8 path")];
    all.extend_from_slice(args);
    let out = support::ferry(&all);
    assert!(
        out.status.success(),
        "ferry {all:?} failed:\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    out
}

async fn drop_target(client: &tokio_postgres::Client, table: &str) {
    client
        .batch_execute(&format!("DROP TABLE IF EXISTS {table} CASCADE"))
        .await
        .expect("drop target table");
}

async fn target_exists(client: &tokio_postgres::Client, table: &str) -> bool {
    client
        .query_one("SELECT to_regclass($1) IS NOT NULL", &[&table])
        .await
        .expect("to_regclass")
        .get(0)
}

/// `name → (format_type, NOT NULL)` of every column of `public.table`.
async fn target_columns(
    client: &tokio_postgres::Client,
    table: &str,
) -> BTreeMap<String, (String, bool)> {
    client
        .query(
            "SELECT attname::text, format_type(atttypid, atttypmod), attnotnull \
             FROM pg_attribute WHERE attrelid = to_regclass($1) AND attnum > 0 \
             AND NOT attisdropped",
            &[&format!("public.{table}")],
        )
        .await
        .expect("pg_attribute")
        .iter()
        .map(|r| (r.get(0), (r.get(1), r.get(2))))
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn schema_prints_statements_and_changes_nothing_until_applied() {
    let session = support::cassandra().await;
    let client = support::postgres().await;
    support::keyspace(&session, KEYSPACE).await;
    support::recreate_table(
        &session,
        &format!(
            "CREATE TABLE {KEYSPACE}.readings (sensor text, day date, at timestamp, seq int, \
             value double, \"we\"\"ird\" text, PRIMARY KEY ((sensor, day), at, seq)) \
             WITH CLUSTERING ORDER BY (at DESC, seq ASC)"
        ),
    )
    .await;
    drop_target(&client, "schema_readings").await;
    drop_target(&client, "schema_readings_2").await;
    let dir = support::scratch_dir("schema_print");
    let config = support::write_config(
        &dir,
        "",
        &format!(
            "[[table]]\nsource = \"{KEYSPACE}.readings\"\ntarget = \"schema_readings\"\n\n\
             [[table]]\nsource = \"{KEYSPACE}.readings\"\ntarget = \"public.schema_readings_2\"\n"
        ),
    );

    let out = schema_ok(&config, &[]);
    let statement = |table: &str| {
        format!(
            "CREATE TABLE IF NOT EXISTS \"public\".\"{table}\" (\n    \
             \"sensor\" text NOT NULL,\n    \
             \"day\" date NOT NULL,\n    \
             \"at\" timestamptz NOT NULL,\n    \
             \"seq\" integer NOT NULL,\n    \
             \"value\" double precision,\n    \
             \"we\"\"ird\" text,\n    \
             PRIMARY KEY (\"sensor\", \"day\", \"at\", \"seq\")\n);\n"
        )
    };
    let expected = format!(
        "{}\n{}",
        statement("schema_readings"),
        statement("schema_readings_2")
    );
    assert_eq!(String::from_utf8_lossy(&out.stdout), expected);
    assert!(
        out.stderr.is_empty(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(!target_exists(&client, "public.schema_readings").await);
    assert!(!target_exists(&client, "public.schema_readings_2").await);

    // --apply runs the same statements.
    let out = schema_ok(&config, &["--apply"]);
    assert_eq!(String::from_utf8_lossy(&out.stdout), expected);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("created public.schema_readings\n"),
        "{stderr}"
    );
    assert!(
        stderr.contains("created public.schema_readings_2\n"),
        "{stderr}"
    );
    let keys = TargetKeys::load(&client, "public", "schema_readings")
        .await
        .expect("keys");
    assert_eq!(keys.primary_key, ["sensor", "day", "at", "seq"]);
    assert!(!keys.has_secondary_indexes() && !keys.has_foreign_keys());
    let columns = target_columns(&client, "schema_readings").await;
    assert_eq!(
        columns.get("we\"ird"),
        Some(&("text".to_string(), false)),
        "{columns:?}"
    );

    // Applied again: the tables exist and are left alone.
    let out = schema_ok(&config, &["--apply"]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("public.schema_readings already exists; left as it is"),
        "{stderr}"
    );
}

/// The torture table through a transform keeping the columns today's encoder writes, into a
/// table `migrate` creates itself.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn create_tables_takes_a_migration_of_the_torture_table() {
    const KS: &str = "ferry_schema_subset";
    let session = support::cassandra().await;
    let client = support::postgres().await;
    torture::seed_into(&session, KS, "everything").await;
    drop_target(&client, "schema_torture_subset").await;
    let dir = support::scratch_dir("schema_torture_subset");
    std::fs::write(
        dir.join("subset.sql"),
        "SELECT pk, ck, c_static, c_ascii, c_text, c_varchar, c_tinyint, c_smallint, c_int, \
         c_bigint, c_float, c_double, c_boolean, c_timestamp, c_date, c_uuid, c_timeuuid, c_blob \
         FROM source\n",
    )
    .expect("write transform");
    let config = support::write_config(
        &dir,
        "connections = 2\nsplits = 4\ncreate_tables = true",
        &format!(
            "[[table]]\nsource = \"{KS}.everything\"\ntarget = \"schema_torture_subset\"\n\
             transform = \"subset.sql\""
        ),
    );
    let report = support::migrate_ok(&config);
    let t = &report["tables"][0];
    let (read, written, rejected) = row_counts(t);
    assert_eq!(read, torture::SEEDED_ROWS as u64, "{t}");
    assert_eq!(read, written + rejected, "{t}");
    // Rejected: the rows (1, 0..=3), whose timestamps or dates are outside PostgreSQL's range.
    assert_eq!(rejected, 4, "{t}");
    let mut columns: Vec<&str> = t["rejects"]
        .as_array()
        .expect("rejects")
        .iter()
        .filter_map(|r| r["column"].as_str())
        .collect();
    columns.sort_unstable();
    assert_eq!(
        columns,
        ["c_date", "c_date", "c_timestamp", "c_timestamp"],
        "{t}"
    );

    let count: i64 = client
        .query_one("SELECT count(*) FROM schema_torture_subset", &[])
        .await
        .expect("count")
        .get(0);
    assert_eq!(count as u64, written);
    let spread: i64 = client
        .query_one(
            "SELECT count(*) FROM schema_torture_subset \
             WHERE pk >= 10 AND c_text = 'row ' || pk AND c_bigint = pk::bigint * 1000000007",
            &[],
        )
        .await
        .expect("spread rows")
        .get(0);
    assert_eq!(spread, 200);
    let keys = TargetKeys::load(&client, "public", "schema_torture_subset")
        .await
        .expect("keys");
    assert_eq!(keys.primary_key, ["pk", "ck"]);
    let columns = target_columns(&client, "schema_torture_subset").await;
    for (name, ty) in [
        ("c_tinyint", "smallint"),
        ("c_timestamp", "timestamp with time zone"),
        ("c_timeuuid", "uuid"),
        ("c_blob", "bytea"),
        ("c_float", "real"),
    ] {
        assert_eq!(columns[name].0, ty, "{name}");
    }

    // With the table there, `create_tables` leaves it alone; `--restart` empties it and forgets
    // the run's committed units, so every row is loaded again, once.
    let report = support::migrate_ok_with(&config, &["--restart", "--yes"]);
    assert_eq!(report["tables"][0]["rows_written"].as_u64(), Some(written));
}

/// Every column of the torture table, identity transform: PostgreSQL takes the statement, and
/// each column gets the type of the mapping.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_full_torture_table_ddl_is_accepted_by_postgresql() {
    const KS: &str = "ferry_schema_full";
    let session = support::cassandra().await;
    let client = support::postgres().await;
    torture::seed_into(&session, KS, "everything").await;
    drop_target(&client, "schema_torture_full").await;
    let dir = support::scratch_dir("schema_torture_full");
    let config = support::write_config(
        &dir,
        "",
        &format!("[[table]]\nsource = \"{KS}.everything\"\ntarget = \"schema_torture_full\""),
    );
    schema_ok(&config, &["--apply"]);

    let int = |t: &str| (t.to_string(), false);
    let mut expected: BTreeMap<String, (String, bool)> = [
        ("c_ascii", "text"),
        ("c_bigint", "bigint"),
        ("c_blob", "bytea"),
        ("c_boolean", "boolean"),
        ("c_date", "date"),
        ("c_decimal", "numeric"),
        ("c_double", "double precision"),
        ("c_duration", "interval"),
        ("c_float", "real"),
        ("c_frozen_udt", "jsonb"),
        ("c_inet", "inet"),
        ("c_int", "integer"),
        ("c_list", "integer[]"),
        ("c_list_of_maps", "jsonb"),
        ("c_map", "jsonb"),
        ("c_map_of_lists", "jsonb"),
        ("c_set", "text[]"),
        ("c_smallint", "smallint"),
        ("c_static", "text"),
        ("c_text", "text"),
        ("c_time", "time without time zone"),
        ("c_timestamp", "timestamp with time zone"),
        ("c_timeuuid", "uuid"),
        ("c_tinyint", "smallint"),
        ("c_tuple", "jsonb"),
        ("c_udt", "jsonb"),
        ("c_uuid", "uuid"),
        ("c_varchar", "text"),
        ("c_varint", "numeric"),
        ("c_vec_bigint", "bigint[]"),
        ("c_vec_boolean", "boolean[]"),
        ("c_vec_date", "date[]"),
        ("c_vec_list", "jsonb"),
        ("c_vec_smallint", "smallint[]"),
        ("c_vec_time", "time without time zone[]"),
        ("c_vec_tinyint", "smallint[]"),
        ("c_vec_uuid", "uuid[]"),
        ("c_vec_varint", "numeric[]"),
        ("c_vector", "real[]"),
        ("c_vector_text", "text[]"),
    ]
    .into_iter()
    .map(|(name, ty)| (name.to_string(), int(ty)))
    .collect();
    for key in ["pk", "ck"] {
        expected.insert(key.to_string(), ("integer".to_string(), true));
    }
    assert_eq!(
        target_columns(&client, "schema_torture_full").await,
        expected
    );
    let keys = TargetKeys::load(&client, "public", "schema_torture_full")
        .await
        .expect("keys");
    assert_eq!(keys.primary_key, ["pk", "ck"]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_transform_that_renames_and_derives_columns() {
    let session = support::cassandra().await;
    let client = support::postgres().await;
    support::keyspace(&session, KEYSPACE).await;
    support::recreate_table(
        &session,
        &format!(
            "CREATE TABLE {KEYSPACE}.people (org text, id uuid, name text, born date, score int, \
             PRIMARY KEY (org, id))"
        ),
    )
    .await;
    for i in 0..5 {
        support::cql(
            &session,
            &format!(
                "INSERT INTO {KEYSPACE}.people (org, id, name, born, score) VALUES \
                 ('acme', 00000000-0000-0000-0000-00000000000{i}, 'person {i}', \
                 '199{i}-0{}-15', {})",
                i + 1,
                i * 3
            ),
        )
        .await;
    }
    drop_target(&client, "schema_people").await;
    drop_target(&client, "schema_people_names").await;
    let dir = support::scratch_dir("schema_people");
    std::fs::write(
        dir.join("people.sql"),
        "SELECT org, id, name AS full_name, upper(name) AS shout, \
         CAST(score AS BIGINT) * 10 AS score_x10, score / 2.0 AS half, born AS birthday, \
         CAST(char_length(name) AS INT) AS name_len FROM source\n",
    )
    .expect("write transform");
    std::fs::write(dir.join("names.sql"), "SELECT org, name FROM source\n")
        .expect("write transform");
    let config = support::write_config(
        &dir,
        "connections = 1\nsplits = 2\ncreate_tables = true",
        &format!(
            "[[table]]\nsource = \"{KEYSPACE}.people\"\ntarget = \"schema_people\"\n\
             transform = \"people.sql\"\n\n\
             [[table]]\nsource = \"{KEYSPACE}.people\"\ntarget = \"schema_people_names\"\n\
             transform = \"names.sql\""
        ),
    );

    let out = schema_ok(&config, &[]);
    assert_eq!(
        String::from_utf8_lossy(&out.stdout),
        "CREATE TABLE IF NOT EXISTS \"public\".\"schema_people\" (\n    \
         \"org\" text NOT NULL,\n    \
         \"id\" uuid NOT NULL,\n    \
         \"full_name\" text,\n    \
         \"shout\" text,\n    \
         \"score_x10\" bigint,\n    \
         \"half\" double precision,\n    \
         \"birthday\" date,\n    \
         \"name_len\" integer,\n    \
         PRIMARY KEY (\"org\", \"id\")\n);\n\n\
         CREATE TABLE IF NOT EXISTS \"public\".\"schema_people_names\" (\n    \
         \"org\" text,\n    \
         \"name\" text\n);\n"
    );
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("warning: public.schema_people_names: no PRIMARY KEY")
            && stderr.contains("key column(s) id"),
        "{stderr}"
    );

    // `migrate` creates both and loads them.
    let report = support::migrate_ok(&config);
    assert_eq!(report["tables"][0]["rows_written"], 5);
    assert_eq!(report["tables"][1]["rows_written"], 5);
    let row = client
        .query_one(
            "SELECT full_name, shout, score_x10, half, birthday::text, name_len \
             FROM schema_people WHERE id = '00000000-0000-0000-0000-000000000003'",
            &[],
        )
        .await
        .expect("derived row");
    assert_eq!(row.get::<_, String>(0), "person 3");
    assert_eq!(row.get::<_, String>(1), "PERSON 3");
    assert_eq!(row.get::<_, i64>(2), 90);
    assert_eq!(row.get::<_, f64>(3), 4.5);
    assert_eq!(row.get::<_, String>(4), "1993-04-15");
    assert_eq!(row.get::<_, i32>(5), 8);
    let keys = TargetKeys::load(&client, "public", "schema_people_names")
        .await
        .expect("keys");
    assert!(keys.primary_key.is_empty());
}

/// Keys, indexes and foreign keys of a table made by hand, and the server's identity.
#[tokio::test]
async fn target_keys_and_server_are_introspected() {
    let client = support::postgres().await;
    client
        .batch_execute(
            "DROP TABLE IF EXISTS schema_child, schema_parent CASCADE;
             CREATE TABLE schema_parent (id integer PRIMARY KEY);
             CREATE TABLE schema_child (a integer, b text, parent integer REFERENCES schema_parent (id),
                                        PRIMARY KEY (b, a));
             CREATE INDEX schema_child_parent ON schema_child (parent);
             CREATE UNIQUE INDEX schema_child_a ON schema_child (a);",
        )
        .await
        .expect("create tables");
    let child = TargetKeys::load(&client, "public", "schema_child")
        .await
        .expect("child keys");
    assert_eq!(child.primary_key, ["b", "a"]);
    let indexes: Vec<(&str, bool)> = child
        .indexes
        .iter()
        .map(|i| (i.name.as_str(), i.unique))
        .collect();
    assert_eq!(
        indexes,
        [("schema_child_a", true), ("schema_child_parent", false)]
    );
    assert!(child.has_secondary_indexes() && child.has_foreign_keys());
    assert_eq!(child.foreign_keys.len(), 1);
    assert_eq!(child.foreign_keys[0].references, "schema_parent");
    assert!(
        child.foreign_keys[0]
            .definition
            .contains("REFERENCES schema_parent(id)"),
        "{:?}",
        child.foreign_keys[0]
    );
    let parent = TargetKeys::load(&client, "public", "schema_parent")
        .await
        .expect("parent keys");
    assert_eq!(parent.primary_key, ["id"]);
    assert!(!parent.has_secondary_indexes() && !parent.has_foreign_keys());
    assert_eq!(parent.referenced_by.len(), 1);
    assert_eq!(parent.referenced_by[0].table, "schema_child");

    let err = TargetKeys::load(&client, "public", "schema_nope")
        .await
        .expect_err("missing table");
    assert!(err.to_string().contains("does not exist"), "{err}");

    let server = ServerInfo::load(&client).await.expect("server");
    let num: String = client
        .query_one("SHOW server_version_num", &[])
        .await
        .expect("version")
        .get(0);
    assert!(!server.yugabyte, "{server:?}");
    assert_eq!(server.version_num.to_string(), num);
    assert!(server.major() >= 11, "{server:?}");
}

/// A misspelt field is refused before anything is read or created.
#[test]
fn a_misspelt_create_tables_is_a_config_error() {
    let dir = support::scratch_dir("schema_typo");
    let config = support::write_config(
        &dir,
        "create_table = true",
        &format!("[[table]]\nsource = \"{KEYSPACE}.readings\""),
    );
    let out = support::ferry(&["schema", "-c", config.to_str().expect("utf-8 path")]);
    support::assert_clean_failure(&out, 2, &["create_table"]);
}

/// Every column of the torture table, identity transform, `create_tables`: the generated table
/// takes the whole migration; only rows holding dates or timestamps outside PostgreSQL's range
/// are rejected.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn create_tables_takes_a_full_migration_of_the_torture_table() {
    const KS: &str = "ferry_schema_full_migrate";
    let session = support::cassandra().await;
    let client = support::postgres().await;
    torture::seed_into(&session, KS, "everything").await;
    drop_target(&client, "schema_torture_full_migrate").await;
    let dir = support::scratch_dir("schema_torture_full_migrate");
    let config = support::write_config(
        &dir,
        "connections = 2\nsplits = 4\ncreate_tables = true",
        &format!(
            "[[table]]\nsource = \"{KS}.everything\"\ntarget = \"schema_torture_full_migrate\""
        ),
    );
    let report = support::migrate_ok(&config);
    let t = &report["tables"][0];
    let (read, written, rejected) = row_counts(t);
    assert_eq!(read, torture::SEEDED_ROWS as u64, "{t}");
    assert_eq!(read, written + rejected, "{t}");
    // The four rows of the subset test, and one whose list of dates holds one out of range.
    assert_eq!(rejected, 5, "{t}");
    for reject in t["rejects"].as_array().expect("rejects") {
        let reason = reject["reason"].as_str().expect("reason");
        assert!(reason.contains("outside PostgreSQL's range"), "{reject}");
    }
    let count: i64 = client
        .query_one("SELECT count(*) FROM schema_torture_full_migrate", &[])
        .await
        .expect("count")
        .get(0);
    assert_eq!(count as u64, written);
}

/// `(rows_read, rows_written, rows_rejected)` of a table report.
fn row_counts(t: &serde_json::Value) -> (u64, u64, u64) {
    let count = |k: &str| t[k].as_u64().unwrap_or_else(|| panic!("{k} in {t}"));
    (
        count("rows_read"),
        count("rows_written"),
        count("rows_rejected"),
    )
}
