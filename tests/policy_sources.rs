//! Every condition key in a shipped policy template is listed in the README's "Policy
//! conditions and their sources" table, on a row naming that template and the statement: a
//! condition the service principal's request does not carry never matches, so each one must
//! point at the AWS page that shows it.

use std::path::Path;

use serde_json::Value;

fn table() -> Vec<String> {
    let readme = std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("README.md")).unwrap();
    let start = readme.find("## Policy conditions and their sources").expect("the README has the section");
    let section = &readme[start..];
    let end = section[3..].find("\n## ").map_or(section.len(), |e| e + 3);
    section[..end].lines().filter(|l| l.starts_with("| ")).map(str::to_string).collect()
}

#[test]
fn every_condition_key_of_every_template_has_a_source_row() {
    let rows = table();
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("policies");
    let mut missing = Vec::new();
    let mut seen = 0;
    for entry in std::fs::read_dir(&dir).unwrap() {
        let path = entry.unwrap().path();
        let file = path.file_name().unwrap().to_str().unwrap().to_string();
        let doc: Value = serde_json::from_str(&std::fs::read_to_string(&path).unwrap()).unwrap();
        let Some(statements) = doc.get("Statement").and_then(Value::as_array) else { continue };
        for s in statements {
            let sid = s["Sid"].as_str().unwrap_or("");
            let Some(conditions) = s.get("Condition").and_then(Value::as_object) else { continue };
            for key in conditions.values().filter_map(Value::as_object).flat_map(|c| c.keys()) {
                seen += 1;
                let listed = rows.iter().any(|r| {
                    r.contains(&file)
                        && r.contains(&format!("`{sid}`"))
                        && r.to_lowercase().contains(&key.to_lowercase())
                });
                if !listed {
                    missing.push(format!("{file} {sid}: {key}"));
                }
            }
        }
    }
    assert!(seen > 10, "read only {seen} condition keys: the templates were not found");
    assert!(missing.is_empty(), "condition keys with no source row in the README: {missing:#?}");
}
