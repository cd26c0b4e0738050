//! The two wildcard dialects ctguard matches text with: `*` alone (principal, event-name and
//! agent patterns), and IAM's `*` and `?` (policy actions, resources and `StringLike`
//! conditions). One matcher serves both.

/// `*` matches any run of characters (none included); every other character matches itself.
pub fn star(pattern: &str, text: &str) -> bool {
    matches(pattern, text, false)
}

/// IAM's wildcard match: `*` any run of characters, `?` any one.
pub fn iam(pattern: &str, text: &str) -> bool {
    matches(pattern, text, true)
}

/// Greedy matching with backtracking to the last `*`: linear in practice, never exponential.
fn matches(pattern: &str, text: &str, question_mark: bool) -> bool {
    let (p, t): (Vec<char>, Vec<char>) = (pattern.chars().collect(), text.chars().collect());
    let (mut pi, mut ti) = (0, 0);
    // Where the last `*` was, and how much of the text it has swallowed so far.
    let mut star: Option<(usize, usize)> = None;
    while ti < t.len() {
        if pi < p.len() && p[pi] == '*' {
            star = Some((pi, ti));
            pi += 1;
        } else if pi < p.len() && (p[pi] == t[ti] || (question_mark && p[pi] == '?')) {
            pi += 1;
            ti += 1;
        } else if let Some((sp, st)) = star {
            pi = sp + 1;
            ti = st + 1;
            star = Some((sp, st + 1));
        } else {
            return false;
        }
    }
    p[pi..].iter().all(|&c| c == '*')
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn star_matches_any_run() {
        for (p, t, ok) in [
            ("*", "", true),
            ("AIAgent*", "AIAgent-ops", true),
            ("AIAgent*", "XAIAgent", false),
            ("*agent*", "my-agent-1", true),
            ("a*b*c", "aXXbYYc", true),
            ("a*b*c", "aXXbYY", false),
            ("exact", "exact", true),
            ("exact", "exactly", false),
            ("**x", "abx", true),
            ("a?c", "abc", false),
            ("a?c", "a?c", true),
        ] {
            assert_eq!(star(p, t), ok, "{p} ~ {t}");
        }
    }

    #[test]
    fn iam_matches_as_iam_does() {
        assert!(iam("s3:put*", "s3:putobject"));
        assert!(iam("*", ""));
        assert!(iam("arn:aws:s3:::b/*/AWSLogs/*", "arn:aws:s3:::b/x/AWSLogs/1/CloudTrail/f.gz"));
        assert!(iam("kms:?ut*", "kms:PutKeyPolicy"));
        assert!(!iam("s3:Get*", "s3:PutObject"));
        assert!(!iam("arn:aws:s3:::b", "arn:aws:s3:::b/x"));
        assert!(!iam("a?", "a"));
    }
}
