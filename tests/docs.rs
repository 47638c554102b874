//! The README's reference tables against what they describe, so they
//! cannot drift: every plugins.toml key the parser knows
//! (`ccmux_plugin_api::host::KEYS`, itself checked against the parser's
//! fields), and every package's folder and name.

use ccmux_tests::repo_root;

fn readme() -> String {
    std::fs::read_to_string(repo_root().join("README.md")).expect("README.md")
}

/// The rows of the markdown table whose header line starts with `header`.
fn table_rows(text: &str, header: &str) -> Vec<Vec<String>> {
    let mut lines = text.lines().skip_while(|l| !l.starts_with(header));
    assert!(lines.next().is_some(), "no table `{header}` in README.md");
    lines
        .skip(1) // |---|
        .take_while(|l| l.starts_with('|'))
        .map(|l| {
            l.trim_matches('|')
                .split(" | ")
                .map(|cell| cell.trim().to_string())
                .collect()
        })
        .collect()
}

/// `` `name` `` → `name`.
fn code(cell: &str) -> String {
    cell.trim_matches('`').to_string()
}

#[test]
fn the_readme_key_table_lists_exactly_the_parsers_keys() {
    let rows = table_rows(&readme(), "| key | in |");
    let mut documented: Vec<String> = rows
        .iter()
        .map(|row| {
            let key = code(&row[0]);
            match row[1].as_str() {
                "top level" => key,
                "`[faults]`" => format!("faults.{key}"),
                "`[[plugins]]`" => format!("plugins.{key}"),
                other => panic!("unknown table `{other}` for `{key}` in README.md"),
            }
        })
        .collect();
    for row in &rows {
        assert_eq!(row.len(), 6, "every column filled: {row:?}");
        assert!(row.iter().all(|cell| !cell.is_empty()), "{row:?}");
    }
    let mut keys: Vec<String> = ccmux_plugin_api::host::KEYS
        .iter()
        .map(|k| k.to_string())
        .collect();
    documented.sort();
    keys.sort();
    assert_eq!(documented, keys, "README.md's plugins.toml table");
}

#[test]
fn the_readme_package_table_names_each_members_folder_and_package() {
    let rows = table_rows(&readme(), "| folder | package (`-p`) |");
    let workspace: toml::Table = std::fs::read_to_string(repo_root().join("Cargo.toml"))
        .expect("Cargo.toml")
        .parse()
        .expect("Cargo.toml is TOML");
    let members: Vec<String> = workspace["workspace"]["members"]
        .as_array()
        .expect("members")
        .iter()
        .filter_map(|m| m.as_str().map(str::to_string))
        .collect();
    let mut actual: Vec<(String, String)> = members
        .iter()
        .map(|member| {
            let manifest: toml::Table =
                std::fs::read_to_string(repo_root().join(member).join("Cargo.toml"))
                    .expect("member Cargo.toml")
                    .parse()
                    .expect("TOML");
            let name = manifest["package"]["name"]
                .as_str()
                .expect("package name")
                .to_string();
            (format!("{member}/"), name)
        })
        .collect();
    let mut documented: Vec<(String, String)> = rows
        .iter()
        .map(|row| (code(&row[0]), code(&row[1])))
        .collect();
    actual.sort();
    documented.sort();
    assert_eq!(documented, actual, "README.md's package table");
}
