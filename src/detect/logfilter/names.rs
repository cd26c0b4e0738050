//! The values a filter pattern lets one top-level field take, for the event-name allow-list
//! (`crate::detect::event_names`).

use super::{Condition, Expr, FilterPattern, Shape, Step, Test};
use crate::detect::event_names::{Names, Partial};

impl FilterPattern {
    /// The values of `$.<field>` this pattern can match: `||` widens, `&&` narrows, a
    /// condition on another field leaves the field free.
    pub(crate) fn field_names(&self, field: &str) -> Names {
        names(&self.root, field)
    }
}

fn names(expr: &Expr, field: &str) -> Names {
    match expr {
        Expr::Or(terms) => terms.iter().map(|t| names(t, field)).reduce(Names::or).unwrap_or(Names::Any),
        Expr::And(terms) => terms.iter().map(|t| names(t, field)).fold(Names::Any, Names::and),
        Expr::Condition(c) => condition(c, field),
    }
}

fn condition(c: &Condition, field: &str) -> Names {
    if !matches!(c.selector.as_slice(), [Step::Key(k)] if k == field) {
        return Names::Any;
    }
    match &c.test {
        Test::OneOf(set) => Names::exact(set.iter().cloned()),
        Test::Equal(literal) => match &literal.shape {
            Shape::Exact(text) => Names::exact([text.clone()]),
            Shape::Prefix(p) => Names::partial(Partial::Prefix(p.clone())),
            Shape::Suffix(s) => Names::partial(Partial::Suffix(s.clone())),
            Shape::Contains(c) => Names::partial(Partial::Contains(c.clone())),
            Shape::Anything => Names::Any,
        },
        // `!=`, numeric comparisons, IS NULL and NOT EXISTS name no value: left free, an
        // over-approximation.
        _ => Names::Any,
    }
}
