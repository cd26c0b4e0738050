//! Property tests: loading and resolving never panic, whatever the text, and a profile that
//! resolves holds no placeholder. Inputs are arbitrary text and the shipped profiles broken the
//! ways files get broken: edited bytes, truncation, deleted or repeated lines.

use proptest::prelude::*;

use super::*;

/// Cases per property. Resolving the flagship profile renders every template, so these cases
/// cost more than the pattern properties'; this keeps the suite within seconds in a debug build.
fn config() -> ProptestConfig {
    ProptestConfig { cases: 128, ..ProptestConfig::default() }
}

fn shipped() -> impl Strategy<Value = String> {
    prop::sample::select(source::builtin_names())
        .prop_map(|name| source::builtin_profile(&name).expect("a built-in profile").text)
}

/// One way a file gets broken.
#[derive(Debug, Clone)]
enum Edit {
    /// Overwrite a byte (the text is read back lossily, as invalid UTF-8 would be refused).
    Byte(prop::sample::Index, u8),
    /// Insert one of the characters TOML and placeholders give meaning to.
    Insert(prop::sample::Index, char),
    Truncate(prop::sample::Index),
    DeleteLine(prop::sample::Index),
    RepeatLine(prop::sample::Index),
}

fn edit() -> impl Strategy<Value = Edit> {
    let special = prop::sample::select(&['[', ']', '=', '"', '\'', '{', '}', '$', '#', '\n', ',', '.', '0'][..]);
    prop_oneof![
        (any::<prop::sample::Index>(), any::<u8>()).prop_map(|(i, b)| Edit::Byte(i, b)),
        (any::<prop::sample::Index>(), special).prop_map(|(i, c)| Edit::Insert(i, c)),
        any::<prop::sample::Index>().prop_map(Edit::Truncate),
        any::<prop::sample::Index>().prop_map(Edit::DeleteLine),
        any::<prop::sample::Index>().prop_map(Edit::RepeatLine),
    ]
}

fn apply(text: &str, edit: &Edit) -> String {
    // An earlier edit may have truncated everything away: nothing left to break.
    if text.is_empty() {
        return String::new();
    }
    let bytes = text.as_bytes();
    let mut lines: Vec<&str> = text.lines().collect();
    match edit {
        Edit::Byte(at, b) => {
            let mut bytes = bytes.to_vec();
            let i = at.index(bytes.len());
            bytes[i] = *b;
            String::from_utf8_lossy(&bytes).into_owned()
        }
        Edit::Insert(at, c) => {
            let mut chars: Vec<char> = text.chars().collect();
            chars.insert(at.index(chars.len()), *c);
            chars.into_iter().collect()
        }
        Edit::Truncate(at) => String::from_utf8_lossy(&bytes[..at.index(bytes.len())]).into_owned(),
        Edit::DeleteLine(at) => {
            lines.remove(at.index(lines.len()));
            lines.join("\n")
        }
        Edit::RepeatLine(at) => {
            let i = at.index(lines.len());
            lines.insert(i, lines[i]);
            lines.join("\n")
        }
    }
}

/// Loads and resolves `text` as the built-in profiles are, with their templates; returns the
/// resolved profile if it is valid.
fn load_and_resolve(text: &str) -> Option<Profile> {
    let file = SourceFile { display: "p.toml".into(), text: text.to_string() };
    let doc = parse(&file).ok()?;
    let loaded = Loaded { file, origin: Origin::BuiltIn, doc };
    let runtime = Runtime::placeholder(loaded.home_region().unwrap_or("us-east-1"));
    loaded.resolve(&runtime, &Vars::new()).ok()
}

proptest! {
    #![proptest_config(config())]

    #[test]
    fn any_text_loads_or_fails_without_panicking(text in any::<String>()) {
        let _ = load_and_resolve(&text);
    }

    #[test]
    fn toml_like_text_loads_or_fails_without_panicking(text in "(\\[{1,2}[a-z_.]{1,12}\\]{1,2}\n|[a-z_]{1,12} ?= ?(\"[a-z${}_ -]{0,10}\"|[0-9]{1,4}|true|\\[\\]|\\{\\})\n|#.*\n|\n){0,12}") {
        let _ = load_and_resolve(&text);
    }

    #[test]
    fn broken_shipped_profiles_fail_cleanly_or_resolve_fully(text in shipped(), edits in prop::collection::vec(edit(), 1..4)) {
        let broken = edits.iter().fold(text, |text, e| apply(&text, e));
        if let Some(profile) = load_and_resolve(&broken) {
            // "A placeholder that nothing defines is an error, never a literal sent to AWS."
            let everything = format!("{profile:?}");
            prop_assert!(vars::references(&everything).is_empty(), "a placeholder survived: {everything}");
        }
    }
}

#[test]
fn the_shipped_profiles_resolve_without_placeholders() {
    // The property above only means something if the unbroken profiles resolve.
    for name in source::builtin_names() {
        let text = source::builtin_profile(&name).unwrap().text;
        let profile = load_and_resolve(&text).unwrap_or_else(|| panic!("{name} should resolve"));
        assert!(vars::references(&format!("{profile:?}")).is_empty(), "{name}");
    }
}
