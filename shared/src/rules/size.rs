//! Rule 4: a volume expansion must grow every volume.

use super::{Ctx, Denial, Rule, RuleResult};
use crate::{
    facts::{Facts, PvcView, QuantityText},
    quantity::Quantity,
};

/// The requested size, if present and valid.
pub fn target_size(facts: &Facts) -> Option<Quantity> {
    facts
        .request
        .size
        .as_deref()
        .and_then(|s| Quantity::parse(s).ok())
}

/// Where the current size was found; put into words only when a message needs it.
pub(crate) enum Source<'a> {
    Database,
    Pvc(&'a PvcView),
}

impl Source<'_> {
    pub(crate) fn describe(&self, facts: &Facts) -> String {
        match (self, &facts.database) {
            (Source::Pvc(pvc), _) => format!("largest PVC {}", pvc.name),
            (Source::Database, Some(db)) => format!(
                "spec.storage of {} {}/{}",
                facts.kind.kind(),
                db.namespace,
                db.name
            ),
            (Source::Database, None) => String::new(),
        }
    }
}

/// A candidate for the current size: a PVC's quantity or the database's spec text.
enum Found<'a> {
    Pvc(&'a QuantityText),
    Spec(&'a str),
}

/// [`current_size`] over the database's PVCs `pvcs`: the first largest value and its source.
pub(crate) fn current_in<'a>(facts: &'a Facts, pvcs: &[&'a PvcView]) -> Option<(Quantity, Source<'a>)> {
    let mut best: Option<(i128, Found<'a>, Source<'a>)> = None;
    fn offer<'a>(
        best: &mut Option<(i128, Found<'a>, Source<'a>)>,
        nanos: Option<i128>,
        found: Found<'a>,
        source: Source<'a>,
    ) {
        if let Some(n) = nanos
            && best.as_ref().is_none_or(|(b, _, _)| n > *b)
        {
            *best = Some((n, found, source));
        }
    }
    for &pvc in pvcs {
        for q in [&pvc.request, &pvc.capacity].into_iter().flatten() {
            offer(&mut best, q.nanos(), Found::Pvc(q), Source::Pvc(pvc));
        }
    }
    // The database's spec counts only before it has volumes: an edit of it grows nothing,
    // so a spec raised past the volumes (the webhook bypassed) must not set the bar.
    if best.is_none()
        && let Some(text) = facts
            .database
            .as_ref()
            .and_then(|db| db.storage_request.as_deref())
    {
        offer(
            &mut best,
            Quantity::nanos_of(text).ok(),
            Found::Spec(text),
            Source::Database,
        );
    }
    let (_, found, source) = best?;
    let quantity = match found {
        Found::Pvc(q) => q.quantity(),
        Found::Spec(text) => Quantity::parse(text).ok(),
    };
    quantity.map(|q| (q, source))
}

/// The current size and where it was found: the largest request or capacity of the database's
/// PVCs; its `spec.storage` while it has none.
pub fn current_size(facts: &Facts) -> Option<(Quantity, String)> {
    let pvcs = facts.database_pvcs();
    current_in(facts, &pvcs).map(|(q, source)| (q, source.describe(facts)))
}

/// Rule 4: desired > current, checked only while the request has not started (once it runs,
/// the controller has written the new size into the database, see docs/KUBEDB.md).
pub(crate) fn check_growing(ctx: &Ctx<'_>) -> RuleResult {
    let facts = ctx.facts;
    if !facts.request.is_pending() {
        return Ok(Vec::new());
    }
    let (Some(target), Some((current, source))) = (&ctx.target, current_in(facts, ctx.db_pvcs())) else {
        return Ok(Vec::new());
    };
    if *target > current {
        return Ok(Vec::new());
    }
    Err(Denial::new(
        Rule::NotGrowing,
        format!(
            "desired storage {target} must be greater than the current {current} ({}); volumes can only grow, \
             so ask for more than {current}",
            source.describe(facts)
        ),
    ))
}
