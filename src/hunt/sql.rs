//! The SQL the compilers write: boolean predicates that are never NULL, string literals that
//! can hold the record's own account ID and partition, LIKE patterns, and the JSON helpers.
//!
//! Everything here stays inside the portable subset the README lists (comparisons, `IN`,
//! `LIKE ... ESCAPE`, `IS [NOT] NULL`, `AND`/`OR`/`NOT`, `COALESCE`, `CASE`, `lower`,
//! `TRY_CAST`, `json_extract`, `json_extract_scalar`, `json_format`, `any_match`,
//! `element_at`, `cardinality`, `split_part`, `replace`, `||`), so one query runs on Athena and,
//! through a few documented macros, on the embedded engine that checks it.

/// A boolean SQL expression that is TRUE or FALSE, never NULL, so `NOT` means what it says.
/// Constants fold, which keeps impossible branches out of the query.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Pred {
    True,
    False,
    Sql(String),
}

impl Pred {
    /// A comparison that may be NULL (a missing column), counted as FALSE.
    pub fn guard(expr: impl AsRef<str>) -> Pred {
        Pred::Sql(format!("COALESCE({}, FALSE)", expr.as_ref()))
    }

    /// An expression already known never to be NULL (`IS NULL`, `any_match` over COALESCEd
    /// predicates).
    pub fn exact(expr: impl Into<String>) -> Pred {
        Pred::Sql(expr.into())
    }

    pub fn and(terms: impl IntoIterator<Item = Pred>) -> Pred {
        let mut parts = Vec::new();
        for term in terms {
            match term {
                Pred::False => return Pred::False,
                Pred::True => {}
                Pred::Sql(s) => parts.push(s),
            }
        }
        match parts.len() {
            0 => Pred::True,
            1 => Pred::Sql(parts.remove(0)),
            _ => Pred::Sql(format!("({})", parts.join(" AND "))),
        }
    }

    pub fn or(terms: impl IntoIterator<Item = Pred>) -> Pred {
        let mut parts = Vec::new();
        for term in terms {
            match term {
                Pred::True => return Pred::True,
                Pred::False => {}
                Pred::Sql(s) => parts.push(s),
            }
        }
        match parts.len() {
            0 => Pred::False,
            1 => Pred::Sql(parts.remove(0)),
            _ => Pred::Sql(format!("({})", parts.join(" OR "))),
        }
    }

    pub fn not(self) -> Pred {
        match self {
            Pred::True => Pred::False,
            Pred::False => Pred::True,
            Pred::Sql(s) => Pred::Sql(format!("(NOT {s})")),
        }
    }

    pub fn render(&self) -> String {
        match self {
            Pred::True => "TRUE".into(),
            Pred::False => "FALSE".into(),
            Pred::Sql(s) => s.clone(),
        }
    }
}

/// `any_match(list, var -> body)`; FALSE for an empty or NULL list.
pub fn any_match(list: &str, var: &str, body: Pred) -> Pred {
    match body {
        Pred::False => Pred::False,
        body => Pred::guard(format!("any_match({list}, {var} -> {})", body.render())),
    }
}

/// The elements of a JSON value that is an array, or the value itself as a one-element list:
/// EventBridge matches "if any element" of an array matches, and a scalar as itself.
pub fn elements(json: &str) -> String {
    format!("COALESCE(TRY_CAST({json} AS ARRAY(JSON)), ARRAY[{json}])")
}

/// The record's account, as `ctguard test` picks it: recipientAccountId, else the identity's
/// account, else the stand-in ctguard validates profiles with.
pub fn account_expr(placeholder: &str) -> String {
    format!("COALESCE(NULLIF(recipientaccountid, ''), NULLIF(useridentity.accountid, ''), '{placeholder}')")
}

/// The record's partition: the second field of the identity's ARN when it starts with `aws`.
pub const PARTITION_EXPR: &str = "(CASE WHEN split_part(useridentity.arn, ':', 2) LIKE 'aws%' THEN split_part(useridentity.arn, ':', 2) ELSE 'aws' END)";

/// How a string literal is used, which decides how a substituted value is escaped.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Context {
    Plain,
    /// Compared after `lower()`.
    Lower,
    /// Inside a LIKE pattern with `ESCAPE '\'`.
    Like,
    /// Inside a LIKE pattern compared after `lower()`.
    LikeLower,
}

/// Writes string literals. Profiles are resolved with stand-in values for the account ID and
/// partition (`markers`); wherever one shows up in a literal, the literal becomes a
/// concatenation with the record's own value, so one query serves every account of an
/// organization exactly as `ctguard test` matches each record as deployed in its own account.
#[derive(Debug, Clone)]
pub struct Literals {
    pub markers: Vec<(String, String)>,
}

impl Literals {
    /// A SQL string expression for `text`.
    pub fn string(&self, text: &str, context: Context) -> String {
        let mut parts: Vec<String> = Vec::new();
        let mut rest = text;
        loop {
            let next = self
                .markers
                .iter()
                .filter_map(|(m, e)| rest.find(m.as_str()).map(|at| (at, m, e)))
                .min_by_key(|(at, ..)| *at);
            let Some((at, marker, expr)) = next else { break };
            if at > 0 {
                parts.push(quote(&rest[..at]));
            }
            parts.push(match context {
                Context::Plain => expr.clone(),
                Context::Lower => format!("lower({expr})"),
                Context::Like => like_escaped(expr),
                Context::LikeLower => like_escaped(&format!("lower({expr})")),
            });
            rest = &rest[at + marker.len()..];
        }
        if !rest.is_empty() || parts.is_empty() {
            parts.push(quote(rest));
        }
        if parts.len() == 1 { parts.remove(0) } else { format!("({})", parts.join(" || ")) }
    }

    /// `expr LIKE pattern ESCAPE '\'`, where `pieces` are literal runs joined by `%`.
    pub fn like(&self, expr: &str, pieces: &[&str], lower: bool) -> Pred {
        let context = if lower { Context::LikeLower } else { Context::Like };
        let escaped: Vec<String> = pieces.iter().map(|p| escape_like(p)).collect();
        let pattern = self.string(&escaped.join("%"), context);
        let subject = if lower { format!("lower({expr})") } else { expr.to_string() };
        Pred::guard(format!("{subject} LIKE {pattern} ESCAPE '\\'"))
    }

    /// `expr IN (...)` over sorted, distinct texts.
    pub fn one_of<'a>(&self, expr: &str, texts: impl IntoIterator<Item = &'a String>, lower: bool) -> Pred {
        let mut texts: Vec<&String> = texts.into_iter().collect();
        texts.sort();
        texts.dedup();
        let context = if lower { Context::Lower } else { Context::Plain };
        let subject = if lower { format!("lower({expr})") } else { expr.to_string() };
        match texts.as_slice() {
            [] => Pred::False,
            [one] => Pred::guard(format!("{subject} = {}", self.string(one, context))),
            many => {
                let list: Vec<String> = many.iter().map(|t| self.string(t, context)).collect();
                Pred::guard(format!("{subject} IN ({})", list.join(", ")))
            }
        }
    }
}

/// A single-quoted SQL string literal.
pub fn quote(text: &str) -> String {
    format!("'{}'", text.replace('\'', "''"))
}

/// `text` with LIKE's `%`, `_` and the escape character itself escaped.
pub fn escape_like(text: &str) -> String {
    text.replace('\\', "\\\\").replace('%', "\\%").replace('_', "\\_")
}

/// A string expression escaped for use inside a LIKE pattern.
fn like_escaped(expr: &str) -> String {
    format!("replace(replace(replace({expr}, '\\', '\\\\'), '%', '\\%'), '_', '\\_')")
}

/// A DOUBLE literal.
pub fn double(value: f64) -> String {
    format!("({value:e})")
}

/// A JSONPath step for a key: `$.key` is read alike by Athena and the test engine only for
/// plain identifiers, so other keys are refused (the caller names the field).
pub fn path_key(key: &str) -> Option<String> {
    let mut chars = key.chars();
    let first_ok = chars.next().is_some_and(|c| c.is_ascii_alphabetic() || c == '_');
    (first_ok && chars.all(|c| c.is_ascii_alphanumeric() || c == '_')).then(|| format!("'$.{key}'"))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn literals() -> Literals {
        Literals { markers: vec![("111122223333".into(), "ACCT".into()), ("aws-marker".into(), "PART".into())] }
    }

    #[test]
    fn constants_fold() {
        let a = Pred::exact("a");
        assert_eq!(Pred::and([Pred::True, a.clone()]), a);
        assert_eq!(Pred::and([Pred::False, a.clone()]), Pred::False);
        assert_eq!(Pred::or([Pred::False, a.clone(), Pred::exact("b")]).render(), "(a OR b)");
        assert_eq!(Pred::or([Pred::True, a.clone()]), Pred::True);
        assert_eq!(Pred::False.not(), Pred::True);
    }

    #[test]
    fn literals_substitute_markers_and_escape() {
        let l = literals();
        assert_eq!(l.string("it's", Context::Plain), "'it''s'");
        assert_eq!(l.string("", Context::Plain), "''");
        assert_eq!(
            l.string("arn:aws-marker:iam::111122223333:role/A", Context::Plain),
            "('arn:' || PART || ':iam::' || ACCT || ':role/A')"
        );
        assert_eq!(l.string("111122223333", Context::Plain), "ACCT");
        let like = l.like("c", &["arn:aws-marker:x_y::111122223333:r", ""], false).render();
        assert!(like.contains("'arn:' || replace(replace(replace(PART,"), "{like}");
        assert!(like.contains("':x\\_y::'"), "{like}");
        assert!(like.ends_with("|| ':r%') ESCAPE '\\', FALSE)"), "{like}");
    }

    #[test]
    fn json_path_keys_are_plain_identifiers() {
        assert_eq!(path_key("enable").as_deref(), Some("'$.enable'"));
        assert_eq!(path_key("MFA_Used2").as_deref(), Some("'$.MFA_Used2'"));
        assert_eq!(path_key("a-b"), None);
        assert_eq!(path_key("1a"), None);
        assert_eq!(path_key(""), None);
    }
}
