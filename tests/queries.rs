//! The named queries (queries/*.sql): each one parses as Trino SQL (sqlglot, from the
//! emulator's virtualenv, infra/local/requirements.txt), reads only the columns of the Athena
//! tables terraform/modules/athena defines (down to struct fields), filters on the delivery
//! date so that Athena prunes, orders its rows, and has the machine-readable header that
//! `trailvault search` and the auditor's guide rely on, with one `-- param:` line per `?`.
//!
//! The parse runs in Python because the parser is sqlglot; what is asserted is asserted here.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Command;

const REPO: &str = env!("CARGO_MANIFEST_DIR");

/// What the header of every query starts with: the time window, the same four parameters in
/// the same order, so that a caller binds them alike everywhere.
const WINDOW: [(&str, &str); 4] = [
    ("from", "timestamp"),
    ("to", "timestamp"),
    ("first_day", "day"),
    ("last_day", "day"),
];
const TYPES: [&str; 3] = ["timestamp", "day", "string"];

/// Reads every `.sql` file of `dir`, parses it with sqlglot and reports, one JSON object per
/// file: the error, or the placeholders, tables, columns not in the schema, whether a
/// `"date" BETWEEN` filter and an ORDER BY are there.
const CHECK: &str = r#"
import json, sys
import sqlglot
from sqlglot import exp

def hive(t):
    """A Hive type string -> (type, rest): a dict of fields for a struct, ('array', elem),
    ('map', value), or the scalar's name."""
    for kind in ("struct<", "array<", "map<"):
        if t.startswith(kind):
            t = t[len(kind):]
            if kind == "struct<":
                fields = {}
                while True:
                    name, t = t.split(":", 1)
                    fields[name], t = hive(t)
                    sep, t = t[0], t[1:]
                    if sep == ">":
                        return fields, t
            if kind == "array<":
                elem, t = hive(t)
                return ("array", elem), t[1:]
            _, t = hive(t)
            t = t[1:]
            value, t = hive(t)
            return ("map", value), t[1:]
    end = min([i for i in (t.find(","), t.find(">")) if i >= 0] or [len(t)])
    return t[:end], t[end:]

schema_dir, query_dir = sys.argv[1], sys.argv[2]
schemas = {}
for kind in ("cloudtrail", "insights"):
    cols = json.load(open(f"{schema_dir}/{kind}-columns.json"))
    schemas[kind] = {c["name"]: hive(c["type"])[0] for c in cols}
    for partition in ("account", "region", "date"):
        schemas[kind][partition] = "string"

for path in sys.argv[3:]:
    sql = open(path).read()
    out = {"file": path}
    try:
        statements = sqlglot.parse(sql, read="trino")
        tree = sqlglot.parse_one(sql, read="trino")
    except Exception as e:
        out["error"] = f"{type(e).__name__}: {e}"
        print(json.dumps(out))
        continue
    out["statements"] = len([s for s in statements if s is not None])
    out["placeholders"] = len(list(tree.find_all(exp.Placeholder)))
    tables = sorted({t.name for t in tree.find_all(exp.Table)})
    out["tables"] = tables
    aliases = {a.alias for a in tree.find_all(exp.Alias)}
    unknown = []
    for column in tree.find_all(exp.Column):
        parts = [p.name for p in column.parts]
        node = column
        while isinstance(node.parent, exp.Dot) and node.parent.this is node:
            node = node.parent
            parts.append(node.expression.name)
        if len(parts) == 1 and parts[0] in aliases:
            continue
        types = [schemas[t] for t in tables if t in schemas]
        found = False
        for fields in types:
            here = fields
            for part in parts:
                if isinstance(here, dict) and part in here:
                    here = here[part]
                else:
                    break
            else:
                found = True
        if not found:
            unknown.append(".".join(parts))
    out["unknown_columns"] = sorted(set(unknown))
    where = tree.args.get("where")
    out["date_filter"] = where is not None and any(
        isinstance(b.this, exp.Column) and b.this.name == "date" and b.this.this.quoted
        for b in where.find_all(exp.Between))
    out["ordered"] = tree.args.get("order") is not None
    print(json.dumps(out))
"#;

#[derive(Debug)]
struct Header {
    name: String,
    description: String,
    params: Vec<(String, String, String)>,
}

/// The comment lines at the top of a query: `-- name:`, `-- description:`, `-- param:`.
fn header(file: &Path, text: &str) -> Header {
    let mut name = None;
    let mut description = None;
    let mut params = Vec::new();
    for line in text.lines().take_while(|l| l.starts_with("--")) {
        let (key, value) = line
            .strip_prefix("-- ")
            .and_then(|l| l.split_once(": "))
            .unwrap_or_else(|| {
                panic!(
                    "{}: header line {line:?} is not `-- KEY: VALUE` (name, description, param)",
                    file.display()
                )
            });
        match key {
            "name" => name = Some(value.trim().to_owned()),
            "description" => description = Some(value.trim().to_owned()),
            "param" => {
                let mut words = value.split_whitespace();
                let (Some(p), Some(t)) = (words.next(), words.next()) else {
                    panic!(
                        "{}: {line:?}: a param line is `-- param: NAME TYPE DESCRIPTION`",
                        file.display()
                    )
                };
                let text: Vec<&str> = words.collect();
                params.push((p.to_owned(), t.to_owned(), text.join(" ")));
            }
            other => panic!(
                "{}: unknown header key {other:?} (name, description, param)",
                file.display()
            ),
        }
    }
    Header {
        name: name.unwrap_or_else(|| panic!("{}: no `-- name:` line", file.display())),
        description: description
            .unwrap_or_else(|| panic!("{}: no `-- description:` line", file.display())),
        params,
    }
}

fn venv_python() -> PathBuf {
    std::env::var_os("TRAILVAULT_VENV")
        .map(PathBuf::from)
        .unwrap_or_else(|| Path::new(REPO).join(".trailvault/venv"))
        .join("bin/python")
}

#[test]
fn every_named_query_parses_as_trino_and_declares_its_parameters() {
    let dir = Path::new(REPO).join("queries");
    let mut files: Vec<PathBuf> = std::fs::read_dir(&dir)
        .expect("queries/")
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "sql"))
        .collect();
    files.sort();
    assert!(
        files.len() >= 10,
        "queries/ holds {} named queries; the library has at least 10",
        files.len()
    );

    let python = venv_python();
    let out = Command::new(&python)
        .arg("-c")
        .arg(CHECK)
        .arg(Path::new(REPO).join("terraform/modules/athena"))
        .arg(&dir)
        .args(&files)
        .output()
        .unwrap_or_else(|e| {
            panic!(
                "{} could not run ({e}): run the tests through infra/test or \
                 `infra/local/emulator run -- cargo test --test queries`, which build the \
                 virtualenv with sqlglot (infra/local/requirements.txt)",
                python.display()
            )
        });
    assert!(
        out.status.success(),
        "the sqlglot check failed (is sqlglot in {}? infra/local/requirements.txt pins it):\n{}",
        python.display(),
        String::from_utf8_lossy(&out.stderr)
    );
    let reports: BTreeMap<String, serde_json::Value> = String::from_utf8(out.stdout)
        .unwrap()
        .lines()
        .map(|l| {
            let v: serde_json::Value = serde_json::from_str(l).unwrap();
            (v["file"].as_str().unwrap().to_owned(), v)
        })
        .collect();
    assert_eq!(reports.len(), files.len(), "{reports:#?}");

    let mut problems = Vec::new();
    for file in &files {
        let shown = file
            .strip_prefix(REPO)
            .unwrap_or(file)
            .display()
            .to_string();
        let text = std::fs::read_to_string(file).unwrap();
        let h = header(file, &text);
        let report = &reports[file.to_str().unwrap()];
        let mut problem = |what: String| problems.push(format!("{shown}: {what}"));
        if let Some(error) = report["error"].as_str() {
            problem(format!("does not parse as Trino SQL: {error}"));
            continue;
        }
        let stem = file.file_stem().unwrap().to_str().unwrap();
        if h.name != stem {
            problem(format!("`-- name: {}` is not the file's name", h.name));
        }
        if h.description.is_empty() {
            problem("an empty description".into());
        }
        let placeholders = report["placeholders"].as_u64().unwrap() as usize;
        if placeholders != h.params.len() {
            problem(format!(
                "{placeholders} `?` placeholders but {} `-- param:` lines: one line per `?`, \
                 in the order they appear",
                h.params.len()
            ));
        }
        let window: Vec<(&str, &str)> = h
            .params
            .iter()
            .take(4)
            .map(|(n, t, _)| (n.as_str(), t.as_str()))
            .collect();
        if window != WINDOW {
            problem(format!(
                "the parameters begin with {window:?}, not the window {WINDOW:?}"
            ));
        }
        for (p, t, d) in &h.params {
            if !TYPES.contains(&t.as_str()) || d.is_empty() {
                problem(format!(
                    "param {p}: type {t:?} is not one of {TYPES:?}, or it has no description"
                ));
            }
        }
        if report["statements"] != 1 {
            problem(format!("{} statements, not one", report["statements"]));
        }
        let tables = report["tables"].as_array().unwrap();
        if tables.is_empty() || !tables.iter().all(|t| t == "cloudtrail" || t == "insights") {
            problem(format!(
                "reads {tables:?}, not the view cloudtrail or insights"
            ));
        }
        let unknown = report["unknown_columns"].as_array().unwrap();
        if !unknown.is_empty() {
            problem(format!(
                "columns not in the Athena tables (terraform/modules/athena/*-columns.json): {unknown:?}"
            ));
        }
        if report["date_filter"] != true {
            problem("no `\"date\" BETWEEN ? AND ?` filter: Athena would read every day".into());
        }
        if report["ordered"] != true {
            problem("no ORDER BY: its rows would come in any order".into());
        }
    }
    assert!(problems.is_empty(), "{}", problems.join("\n"));
    eprintln!("{} named queries parse as Trino SQL", files.len());
}
