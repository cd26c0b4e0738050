//! CloudWatch Logs JSON filter patterns (metric and subscription filters), evaluated offline
//! against a JSON log event such as a CloudTrail record in the trail's log group.
//!
//! Grammar and semantics are those of the CloudWatch Logs User Guide, "Filter and Pattern
//! Syntax" (sections "Matching JSON Terms Using Metric Filters", "JSON Metric Filter Examples",
//! "JSON Compound Conditions", "JSON Special Considerations", "Numeric Comparisons"):
//!
//! - `{ SELECTOR OP VALUE }` with `$.a.b`, `$.a[0].b`, `$.a[0][1]` selectors (names are letters,
//!   digits, `-` and `_`); `=`/`!=` on strings or numbers, `<`, `<=`, `>`, `>=` on numbers;
//!   `IS NULL`, `IS TRUE`, `IS FALSE`, `NOT EXISTS`.
//! - `&&` and `||` with parentheses; "the syntax follows standard order of operations
//!   () > && > ||", so `A || B && C` is `A || (B && C)`.
//! - Values with or without double quotes; `*` at the start and/or end of a string is a
//!   wildcard ("`Ev*ent` will only match the actual string `Ev*ent`").
//! - A comparison needs a value node: "The SELECTOR must point to a value node (string or
//!   number) ... both {$.users = 1} and {$.users != 1} will fail to match" an array. So `=` and
//!   `!=` are both false on a missing field, `null`, a boolean, an array or an object; only
//!   `NOT EXISTS` matches a missing field.
//! - Matching is case sensitive ("Metric filters are case sensitive").

mod names;
#[cfg(test)]
mod properties;
#[cfg(test)]
mod tests;

use serde_json::Value;

use crate::detect::{PatternError, StackText};

/// PutMetricFilter `filterPattern`: "Maximum length of 1024".
const MAX_LENGTH: usize = 1024;

/// Deepest parenthesis nesting parsed. The parser and the evaluator recurse once per level, and
/// the 1024 characters allow about 500 levels, enough to overflow a 2 MiB thread stack in a
/// debug build (a crash, not an error). AWS documents no limit; real patterns nest two or three
/// levels.
const MAX_NESTING: usize = 256;

/// A parsed JSON filter pattern.
#[derive(Debug, Clone)]
pub struct FilterPattern {
    pub(crate) root: Expr,
}

impl FilterPattern {
    /// Parses and validates a pattern. Errors give the 1-based character position.
    pub fn parse(pattern: &str) -> Result<FilterPattern, PatternError> {
        let length = pattern.chars().count();
        if length > MAX_LENGTH {
            return Err(PatternError::new(
                "pattern",
                format!("{length} characters, more than the {MAX_LENGTH} allowed"),
            ));
        }
        let mut parser = Parser { chars: pattern.chars().collect(), pos: 0, nesting: 0 };
        Ok(FilterPattern { root: parser.pattern()? })
    }

    /// Whether `log_event` matches. Never fails.
    pub fn matches(&self, log_event: &Value) -> bool {
        self.root.holds(log_event)
    }

    /// A normal form: spacing, quoting of plain strings, nesting of `||` and `&&`, and the order
    /// of their terms do not show. Two patterns with the same normal form match the same
    /// events; the converse does not hold.
    pub fn canonical(&self) -> String {
        self.root.canonical()
    }
}

// ---------------------------------------------------------------------------------------------
// Evaluation
// ---------------------------------------------------------------------------------------------

#[derive(Debug, Clone)]
pub(crate) enum Expr {
    Or(Vec<Expr>),
    And(Vec<Expr>),
    Condition(Condition),
}

impl Expr {
    fn holds(&self, event: &Value) -> bool {
        match self {
            Expr::Or(terms) => terms.iter().any(|t| t.holds(event)),
            Expr::And(terms) => terms.iter().all(|t| t.holds(event)),
            Expr::Condition(condition) => condition.test.holds(resolve(event, &condition.selector)),
        }
    }
}

impl Expr {
    fn canonical(&self) -> String {
        let joiner = match self {
            Expr::Condition(c) => {
                let alternatives = c.canonical();
                return match alternatives.as_slice() {
                    [one] => one.clone(),
                    many => format!("({})", many.join(" || ")),
                };
            }
            Expr::Or(_) => " || ",
            Expr::And(_) => " && ",
        };
        let mut parts = std::collections::BTreeSet::new();
        self.flatten(&mut parts);
        format!("({})", parts.into_iter().collect::<Vec<_>>().join(joiner))
    }

    /// The canonical terms of an `||` or `&&`, with children of the same operator spliced in.
    fn flatten(&self, parts: &mut std::collections::BTreeSet<String>) {
        let (Expr::Or(terms) | Expr::And(terms)) = self else { return };
        for term in terms {
            match (self, term) {
                (Expr::Or(_), Expr::Or(_)) | (Expr::And(_), Expr::And(_)) => term.flatten(parts),
                (Expr::Or(_), Expr::Condition(c)) => parts.extend(c.canonical()),
                _ => {
                    parts.insert(term.canonical());
                }
            }
        }
    }
}

#[derive(Debug, Clone)]
pub(crate) struct Condition {
    pub(crate) selector: Vec<Step>,
    pub(crate) test: Test,
}

/// Folds `($.f = "a") || ($.f = "b") || ...` into one set lookup. The CIS patterns are long
/// chains of exact eventName tests, and `ctguard test` runs them on every record.
fn merge_exact(terms: Vec<Expr>) -> Vec<Expr> {
    let mut out: Vec<Expr> = Vec::with_capacity(terms.len());
    for term in terms {
        let exact = match &term {
            Expr::Condition(Condition { selector, test: Test::Equal(l) }) if l.number.is_none() => match &l.shape {
                Shape::Exact(text) => Some((selector.clone(), text.clone())),
                _ => None,
            },
            _ => None,
        };
        let Some((selector, text)) = exact else {
            out.push(term);
            continue;
        };
        let same = out.iter_mut().find_map(|e| match e {
            Expr::Condition(Condition { selector: s, test: Test::OneOf(set) }) if *s == selector => Some(set),
            _ => None,
        });
        match same {
            Some(set) => {
                set.insert(text);
            }
            None => out.push(Expr::Condition(Condition { selector, test: Test::OneOf([text].into()) })),
        }
    }
    out
}

impl Condition {
    /// One text per ORed alternative (several for a merged set of `=` tests).
    fn canonical(&self) -> Vec<String> {
        let selector: String = std::iter::once("$".to_string())
            .chain(self.selector.iter().map(|step| match step {
                Step::Key(k) => format!(".{k}"),
                Step::Index(i) => format!("[{i}]"),
            }))
            .collect();
        let tests = match &self.test {
            Test::Equal(l) => vec![format!("= {}", l.canonical())],
            Test::OneOf(set) => {
                let mut texts: Vec<&String> = set.iter().collect();
                texts.sort();
                texts.into_iter().map(|t| format!("= {}", Value::from(t.as_str()))).collect()
            }
            Test::NotEqual(l) => vec![format!("!= {}", l.canonical())],
            Test::Compare(op, bound) => vec![format!("{} {bound}", op.symbol())],
            Test::IsNull => vec!["IS NULL".into()],
            Test::IsTrue => vec!["IS TRUE".into()],
            Test::IsFalse => vec!["IS FALSE".into()],
            Test::NotExists => vec!["NOT EXISTS".into()],
        };
        tests.into_iter().map(|t| format!("{selector} {t}")).collect()
    }
}

#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Step {
    Key(String),
    Index(usize),
}

/// The value a selector points to, `None` if any step is missing or of the wrong type ("If
/// arrayKey is not an array this will be false").
fn resolve<'a>(event: &'a Value, selector: &[Step]) -> Option<&'a Value> {
    selector.iter().try_fold(event, |value, step| match step {
        Step::Key(key) => value.as_object()?.get(key),
        Step::Index(i) => value.as_array()?.get(*i),
    })
}

#[derive(Debug, Clone)]
pub(crate) enum Test {
    Equal(Literal),
    /// Several ORed exact-string `=` tests on one selector.
    OneOf(std::collections::HashSet<String>),
    NotEqual(Literal),
    Compare(Comparison, f64),
    IsNull,
    IsTrue,
    IsFalse,
    NotExists,
}

impl Test {
    fn holds(&self, value: Option<&Value>) -> bool {
        let value_node = value.filter(|v| v.is_string() || v.is_number());
        match self {
            Test::Equal(literal) => value_node.is_some_and(|v| literal.matches(v)),
            Test::NotEqual(literal) => value_node.is_some_and(|v| !literal.matches(v)),
            Test::OneOf(set) => value_node.is_some_and(|v| match v {
                Value::String(s) => set.contains(s.as_str()),
                other => StackText::of(other).is_some_and(|text| set.contains(text.as_str())),
            }),
            // "numeric comparisons" read numbers: a string of digits is not one.
            Test::Compare(op, bound) => value.and_then(Value::as_f64).is_some_and(|v| op.holds(v, *bound)),
            Test::IsNull => matches!(value, Some(Value::Null)),
            Test::IsTrue => matches!(value, Some(Value::Bool(true))),
            Test::IsFalse => matches!(value, Some(Value::Bool(false))),
            Test::NotExists => value.is_none(),
        }
    }
}

#[derive(Debug, Clone, Copy)]
pub(crate) enum Comparison {
    Less,
    LessOrEqual,
    Greater,
    GreaterOrEqual,
}

impl Comparison {
    pub(crate) fn symbol(self) -> &'static str {
        match self {
            Comparison::Less => "<",
            Comparison::LessOrEqual => "<=",
            Comparison::Greater => ">",
            Comparison::GreaterOrEqual => ">=",
        }
    }

    fn holds(self, value: f64, bound: f64) -> bool {
        match self {
            Comparison::Less => value < bound,
            Comparison::LessOrEqual => value <= bound,
            Comparison::Greater => value > bound,
            Comparison::GreaterOrEqual => value >= bound,
        }
    }
}

/// The right-hand side of `=` or `!=`.
#[derive(Debug, Clone)]
pub(crate) struct Literal {
    /// Set for an unquoted number: compared numerically with a number field (`400` matches
    /// `400.0`), and as written with a string field (`123456789012` matches the string
    /// recipientAccountId, as in the guide's example).
    pub(crate) number: Option<f64>,
    pub(crate) shape: Shape,
}

/// A string value with its wildcards resolved: `*` counts only at either end.
#[derive(Debug, Clone)]
pub(crate) enum Shape {
    Exact(String),
    Prefix(String),
    Suffix(String),
    Contains(String),
    Anything,
}

impl Literal {
    fn new(text: String, number: Option<f64>) -> Literal {
        if number.is_some() || !(text.starts_with('*') || text.ends_with('*')) {
            return Literal { number, shape: Shape::Exact(text) };
        }
        let core = text.trim_matches('*').to_owned();
        let shape = match (text.starts_with('*'), text.ends_with('*')) {
            _ if core.is_empty() => Shape::Anything,
            (true, true) => Shape::Contains(core),
            (true, false) => Shape::Suffix(core),
            _ => Shape::Prefix(core),
        };
        Literal { number: None, shape }
    }

    fn canonical(&self) -> String {
        if let Some(n) = self.number {
            return n.to_string();
        }
        let text = match &self.shape {
            Shape::Exact(t) => t.clone(),
            Shape::Prefix(core) => format!("{core}*"),
            Shape::Suffix(core) => format!("*{core}"),
            Shape::Contains(core) => format!("*{core}*"),
            Shape::Anything => "*".into(),
        };
        Value::from(text).to_string()
    }

    /// `value` is a string or a number.
    fn matches(&self, value: &Value) -> bool {
        match (value, self.number) {
            (Value::Number(n), Some(x)) => n.as_f64() == Some(x),
            // A string pattern against a number field compares the number as written.
            (Value::Number(n), None) => StackText::of(n).is_some_and(|text| self.matches_text(text.as_str())),
            (Value::String(s), _) => self.matches_text(s),
            _ => false,
        }
    }

    fn matches_text(&self, s: &str) -> bool {
        match &self.shape {
            Shape::Exact(text) => s == text,
            Shape::Prefix(core) => s.starts_with(core.as_str()),
            Shape::Suffix(core) => s.ends_with(core.as_str()),
            Shape::Contains(core) => s.contains(core.as_str()),
            Shape::Anything => true,
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Parsing: recursive descent, one function per precedence level.
// ---------------------------------------------------------------------------------------------

struct Parser {
    chars: Vec<char>,
    pos: usize,
    /// Parentheses open at `pos`.
    nesting: usize,
}

impl Parser {
    fn error(&self, message: impl Into<String>) -> PatternError {
        self.error_at(self.pos, message)
    }

    fn error_at(&self, pos: usize, message: impl Into<String>) -> PatternError {
        PatternError::new(format!("character {}", pos + 1), message)
    }

    fn peek(&self) -> Option<char> {
        self.chars.get(self.pos).copied()
    }

    fn skip_spaces(&mut self) {
        while self.peek().is_some_and(char::is_whitespace) {
            self.pos += 1;
        }
    }

    /// Consumes `token` (after any whitespace) if it is next.
    fn eat(&mut self, token: &str) -> bool {
        self.skip_spaces();
        let matches = token.chars().enumerate().all(|(i, c)| self.chars.get(self.pos + i) == Some(&c));
        if matches {
            self.pos += token.chars().count();
        }
        matches
    }

    /// `{ expression }`, alone in the pattern.
    fn pattern(&mut self) -> Result<Expr, PatternError> {
        if !self.eat("{") {
            return Err(self.error("a JSON filter pattern must be enclosed in { }"));
        }
        let root = self.or()?;
        if !self.eat("}") {
            return Err(self.error("expected &&, || or the closing }"));
        }
        self.skip_spaces();
        if self.pos < self.chars.len() {
            return Err(self.error("unexpected text after the closing }"));
        }
        Ok(root)
    }

    fn or(&mut self) -> Result<Expr, PatternError> {
        let mut terms = vec![self.and()?];
        while self.eat("||") {
            terms.push(self.and()?);
        }
        Ok(if terms.len() == 1 { terms.remove(0) } else { Expr::Or(merge_exact(terms)) })
    }

    fn and(&mut self) -> Result<Expr, PatternError> {
        let mut terms = vec![self.primary()?];
        while self.eat("&&") {
            terms.push(self.primary()?);
        }
        Ok(if terms.len() == 1 { terms.remove(0) } else { Expr::And(terms) })
    }

    /// `( expression )` or a condition.
    fn primary(&mut self) -> Result<Expr, PatternError> {
        self.skip_spaces();
        let open = self.pos;
        if self.eat("(") {
            if self.nesting == MAX_NESTING {
                return Err(self.error_at(open, format!("parentheses nested more than {MAX_NESTING} deep")));
            }
            self.nesting += 1;
            let inner = self.or()?;
            self.nesting -= 1;
            if !self.eat(")") {
                let message = format!("expected && or || or ) to close the ( at character {}", open + 1);
                return Err(self.error(message));
            }
            return Ok(inner);
        }
        if self.peek() != Some('$') {
            return Err(self.error("expected a condition such as $.eventName = \"RunInstances\", or ("));
        }
        let selector = self.selector()?;
        let test = self.test()?;
        Ok(Expr::Condition(Condition { selector, test }))
    }

    /// `$.name`, then any of `.name` and `[index]`.
    fn selector(&mut self) -> Result<Vec<Step>, PatternError> {
        self.pos += 1; // the '$'
        if self.peek() != Some('.') {
            return Err(self.error("a selector starts with $. and a property name, like $.eventName"));
        }
        let mut steps = Vec::new();
        loop {
            match self.peek() {
                Some('.') => {
                    self.pos += 1;
                    steps.push(Step::Key(self.name()?));
                }
                Some('[') => steps.push(Step::Index(self.index()?)),
                _ => return Ok(steps),
            }
        }
    }

    /// A property name: "alphanumeric strings that also support '-' and '_' characters".
    fn name(&mut self) -> Result<String, PatternError> {
        let start = self.pos;
        while self.peek().is_some_and(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_') {
            self.pos += 1;
        }
        if start == self.pos {
            return Err(self.error("expected a property name (letters, digits, - and _) after the ."));
        }
        Ok(self.chars[start..self.pos].iter().collect())
    }

    /// `[NUMBER]`.
    fn index(&mut self) -> Result<usize, PatternError> {
        let open = self.pos;
        self.pos += 1;
        let start = self.pos;
        while self.peek().is_some_and(|c| c.is_ascii_digit()) {
            self.pos += 1;
        }
        let digits: String = self.chars[start..self.pos].iter().collect();
        if digits.is_empty() || self.peek() != Some(']') {
            return Err(self.error_at(open, "an array index is written [NUMBER], like [0]"));
        }
        self.pos += 1;
        digits.parse().map_err(|_| self.error_at(open, "array index too large"))
    }

    /// What follows a selector: an operator and a value, or a keyword test.
    fn test(&mut self) -> Result<Test, PatternError> {
        // Two-character operators first, so "<=" is not read as "<".
        for (token, op) in [
            ("<=", Comparison::LessOrEqual),
            (">=", Comparison::GreaterOrEqual),
            ("<", Comparison::Less),
            (">", Comparison::Greater),
        ] {
            if self.eat(token) {
                return self.number_for(token).map(|n| Test::Compare(op, n));
            }
        }
        if self.eat("!=") {
            return self.literal("!=").map(Test::NotEqual);
        }
        if self.eat("=") {
            return self.literal("=").map(Test::Equal);
        }
        let keywords = self.keywords();
        match keywords.as_str() {
            "IS NULL" => Ok(Test::IsNull),
            "IS TRUE" => Ok(Test::IsTrue),
            "IS FALSE" => Ok(Test::IsFalse),
            "NOT EXISTS" => Ok(Test::NotExists),
            _ => {
                Err(self.error("expected an operator (=, !=, <, <=, >, >=) or IS NULL, IS TRUE, IS FALSE, NOT EXISTS"))
            }
        }
    }

    /// Up to two upper-case words, joined by one space ("IS NULL"); consumed only if recognized.
    fn keywords(&mut self) -> String {
        let start = self.pos;
        let mut words = Vec::new();
        for _ in 0..2 {
            self.skip_spaces();
            let begin = self.pos;
            while self.peek().is_some_and(|c| c.is_ascii_uppercase()) {
                self.pos += 1;
            }
            words.push(self.chars[begin..self.pos].iter().collect::<String>());
        }
        let joined = words.join(" ");
        if !matches!(joined.as_str(), "IS NULL" | "IS TRUE" | "IS FALSE" | "NOT EXISTS") {
            self.pos = start;
        }
        joined
    }

    fn number_for(&mut self, op: &str) -> Result<f64, PatternError> {
        self.skip_spaces();
        let start = self.pos;
        let literal = self.literal(op)?;
        literal.number.ok_or_else(|| {
            self.error_at(start, format!("{op} compares numbers; expected a number like 500, -1.5 or 10e3"))
        })
    }

    /// A quoted string, or an unquoted word or number.
    fn literal(&mut self, op: &str) -> Result<Literal, PatternError> {
        self.skip_spaces();
        if self.peek() == Some('"') {
            return Ok(Literal::new(self.quoted()?, None));
        }
        let start = self.pos;
        while self.peek().is_some_and(|c| !c.is_whitespace() && !"(){}\"&|=!<>".contains(c)) {
            self.pos += 1;
        }
        let word: String = self.chars[start..self.pos].iter().collect();
        if word.is_empty() {
            return Err(self.error(format!("expected a value after {op}")));
        }
        if word.starts_with('%') {
            return Err(self.error_at(start, "regular-expression values (%...%) are not supported by this evaluator"));
        }
        // "Strings that have unicode and other characters such as '@', '$', '\' etc. must be
        // enclosed in double quotes"; AWS's own examples leave '.', '*' and '-' unquoted.
        if let Some(bad) = word.chars().find(|c| !(c.is_ascii_alphanumeric() || "._*-:/+".contains(*c))) {
            return Err(
                self.error_at(start, format!("unquoted value contains {bad:?}; put the value in double quotes"))
            );
        }
        let number = is_number(&word).then(|| word.parse().ok()).flatten();
        Ok(Literal::new(word, number))
    }

    /// `"..."`; `\"` stands for a quote, every other character (backslash included) for itself.
    fn quoted(&mut self) -> Result<String, PatternError> {
        let open = self.pos;
        self.pos += 1;
        let mut text = String::new();
        loop {
            match self.peek() {
                None => return Err(self.error_at(open, "unterminated string: no closing \"")),
                Some('"') => {
                    self.pos += 1;
                    return Ok(text);
                }
                Some('\\') if self.chars.get(self.pos + 1) == Some(&'"') => {
                    text.push('"');
                    self.pos += 2;
                }
                Some(c) => {
                    text.push(c);
                    self.pos += 1;
                }
            }
        }
    }
}

/// "An integer with an optional + or - sign, a decimal with an optional + or - sign, or a number
/// in scientific notation" (Numeric Comparisons).
fn is_number(word: &str) -> bool {
    let unsigned = word.strip_prefix(['+', '-']).unwrap_or(word);
    let (mantissa, exponent) = match unsigned.split_once(['e', 'E']) {
        Some((m, e)) => (m, Some(e.strip_prefix(['+', '-']).unwrap_or(e))),
        None => (unsigned, None),
    };
    let digits = |s: &str| !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit());
    let mantissa_ok = match mantissa.split_once('.') {
        Some((whole, fraction)) => digits(whole) && digits(fraction),
        None => digits(mantissa),
    };
    mantissa_ok && exponent.is_none_or(digits)
}
