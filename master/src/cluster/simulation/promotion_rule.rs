//! ASHA's promotion rule written out independently of the searcher, for tests to check its
//! promotions against (the simulation's and the cluster test's).

/// Whether result `a`, arrived `ia`-th, ranks before result `b`, arrived `ib`-th: the smaller
/// loss first, a failure (None) last, ties to the earlier.
fn ranks_before(a: Option<f64>, ia: usize, b: Option<f64>, ib: usize) -> bool {
    match (a, b) {
        (Some(a), Some(b)) => a < b || (a == b && ia < ib),
        (Some(_), None) => true,
        (None, Some(_)) => false,
        (None, None) => ia < ib,
    }
}

/// Whether the result that arrived `position`-th at a rung is promoted by the rule: at some moment
/// from its arrival on, when the rung has k results, it ranks in the top ⌊k / divisor⌋.
pub fn promoted_by_rule(results: &[Option<f64>], position: usize, divisor: usize) -> bool {
    let mine = results[position];
    (position + 1..=results.len()).any(|k| {
        let before = (0..k)
            .filter(|&i| ranks_before(results[i], i, mine, position))
            .count();
        before < k / divisor
    })
}
