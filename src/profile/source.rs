//! Where profiles and templates come from: a file on disk, or the copies built into the binary
//! (so an installed ctguard works without the repository).

use std::path::{Component, Path, PathBuf};

use include_dir::{Dir, include_dir};

static PROFILES: Dir<'static> = include_dir!("$CARGO_MANIFEST_DIR/profiles");
static POLICIES: Dir<'static> = include_dir!("$CARGO_MANIFEST_DIR/policies");

/// A file's text and the name errors should show for it.
#[derive(Debug, Clone)]
pub struct SourceFile {
    pub display: String,
    pub text: String,
}

/// Where a profile was found, which decides where its templates are looked up.
#[derive(Debug, Clone)]
pub enum Origin {
    /// Built in: `profiles/NAME.toml` inside the binary.
    BuiltIn,
    /// On disk: the directory holding the profile file.
    Disk(PathBuf),
}

/// Names of the built-in profiles, sorted.
pub fn builtin_names() -> Vec<String> {
    let mut names: Vec<String> = PROFILES
        .files()
        .filter(|f| f.path().extension().is_some_and(|e| e == "toml"))
        .filter_map(|f| f.path().file_stem().map(|s| s.to_string_lossy().into_owned()))
        .collect();
    names.sort();
    names
}

pub fn builtin_profile(name: &str) -> Option<SourceFile> {
    let file = PROFILES.get_file(format!("{name}.toml"))?;
    Some(SourceFile { display: format!("<built-in>/profiles/{name}.toml"), text: file.contents_utf8()?.to_string() })
}

/// Built-in templates, as (file name, text).
pub fn builtin_templates() -> Vec<(String, &'static str)> {
    POLICIES.files().filter_map(|f| Some((f.path().to_string_lossy().into_owned(), f.contents_utf8()?))).collect()
}

/// A spec is a path when it names an existing file or looks like one; otherwise a built-in name.
pub fn find_profile(spec: &str) -> anyhow::Result<(SourceFile, Origin)> {
    let path = Path::new(spec);
    let looks_like_path = spec.contains(std::path::MAIN_SEPARATOR) || spec.ends_with(".toml");
    if path.is_file() || looks_like_path {
        let text = std::fs::read_to_string(path).map_err(|e| anyhow::anyhow!("reading profile {spec}: {e}"))?;
        let dir = path.parent().map(Path::to_path_buf).unwrap_or_default();
        return Ok((SourceFile { display: spec.to_string(), text }, Origin::Disk(dir)));
    }
    match builtin_profile(spec) {
        Some(file) => Ok((file, Origin::BuiltIn)),
        None => anyhow::bail!(
            "no profile named {spec:?}: the built-in profiles are {}; or pass a path to a .toml file",
            builtin_names().join(", ")
        ),
    }
}

/// Lexically joins `dir` and `rel`, resolving `..` without touching the file system.
fn join_lexically(dir: &Path, rel: &str) -> PathBuf {
    let mut out = PathBuf::new();
    for part in dir.join(rel).components() {
        match part {
            Component::ParentDir if out.components().next_back().is_some_and(|c| matches!(c, Component::Normal(_))) => {
                out.pop();
            }
            other => out.push(other),
        }
    }
    out
}

impl Origin {
    /// Reads template `name` from `policies_dir` (relative to the profile). A built-in profile
    /// reads built-in templates, laid out as in the repository: profiles/ beside policies/.
    pub fn read_template(&self, policies_dir: &str, name: &str) -> Result<SourceFile, String> {
        match self {
            Origin::BuiltIn => {
                let path = join_lexically(Path::new("profiles"), policies_dir).join(name);
                let rel =
                    path.strip_prefix("policies").map_err(|_| format!("no built-in template {}", path.display()))?;
                let file = POLICIES.get_file(rel).ok_or_else(|| format!("no built-in template {}", path.display()))?;
                Ok(SourceFile {
                    display: format!("<built-in>/{}", path.display()),
                    text: file.contents_utf8().unwrap_or_default().to_string(),
                })
            }
            Origin::Disk(dir) => {
                let path = join_lexically(dir, policies_dir).join(name);
                let text =
                    std::fs::read_to_string(&path).map_err(|e| format!("cannot read {}: {e}", path.display()))?;
                Ok(SourceFile { display: path.display().to_string(), text })
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lexical_join_resolves_parent() {
        assert_eq!(join_lexically(Path::new("profiles"), "../policies"), PathBuf::from("policies"));
        assert_eq!(join_lexically(Path::new("/a/b"), "../c/d"), PathBuf::from("/a/c/d"));
    }

    #[test]
    fn builtin_profiles_read_builtin_templates() {
        assert!(builtin_names().contains(&"ai-agent-guard".to_string()));
        let t = Origin::BuiltIn.read_template("../policies", "audit-bucket-policy.json").unwrap();
        assert!(t.text.contains("cloudtrail.amazonaws.com"));
    }
}
