//! Tie-aware comparison of MoE expert choices with the golden's. Two experts whose router
//! probabilities are nearly equal are picked either way by computations that are both correct
//! (quantized activations move logits by ~1e-3); one flipped token then changes every later
//! stage. So a choice that differs where the golden's probabilities of the competing experts are
//! closer than the contract's `route_margin` is *ambiguous routing*: reported, and re-run routed
//! as the golden did so the later stages stay comparable at tight tolerances. Anywhere else the
//! expert ids must match exactly.

use std::collections::BTreeMap;

use assay_engine::trace::Capture;
use serde::Serialize;

use crate::golden::Stage;

/// One token's expert choice at one layer that differs from the golden's.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Route {
    pub layer: usize,
    /// Token position.
    pub pos: usize,
    pub ours: Vec<u32>,
    pub golden: Vec<u32>,
    /// Largest gap between the golden's probabilities of its choice and ours, rank by rank.
    pub margin: f64,
}

/// The routing of a run against the golden.
#[derive(Clone, Debug, Default, Serialize)]
pub struct RoutingCheck {
    /// The contract's `route_margin` (0 without one).
    pub margin_bound: f64,
    /// Token × layer choices compared.
    pub rows: usize,
    /// Differed under the margin bound: routed as the golden for the stages reported.
    pub ambiguous: Vec<Route>,
    /// Differ in the run judged (after the ambiguous ones were forced): failures.
    pub mismatched: Vec<Route>,
}

/// Every token × layer whose ordered expert ids in `run` differ from the golden's, with its
/// margin; `rows` compared. `None` when the golden or the run has no routing stages.
pub fn differences(
    run: &Capture,
    golden: &BTreeMap<String, Stage>,
    n_layer: usize,
    k: usize,
) -> Option<(usize, Vec<Route>)> {
    let mut rows = 0;
    let mut out = Vec::new();
    for layer in 0..n_layer {
        let (Some(g_ids), Some(g_probs), Some(ours)) = (
            golden.get(&format!("ffn_moe_topk-{layer}")),
            golden.get(&format!("ffn_moe_probs-{layer}")),
            run.stages.get(&format!("ffn_moe_topk-{layer}")),
        ) else {
            return None;
        };
        let n_expert = g_probs.shape.last().copied().unwrap_or(0);
        if ours.values.len() != g_ids.values.len() || n_expert == 0 {
            return None;
        }
        for (pos, ((o, g), p)) in ours
            .values
            .chunks_exact(k)
            .zip(g_ids.values.chunks_exact(k))
            .zip(g_probs.values.chunks_exact(n_expert))
            .enumerate()
        {
            rows += 1;
            if o == g {
                continue;
            }
            let prob = |e: f32| p.get(e as usize).map_or(f64::INFINITY, |&v| f64::from(v));
            let margin =
                o.iter().zip(g).filter(|(a, b)| a != b).map(|(&a, &b)| (prob(b) - prob(a)).abs()).fold(0.0, f64::max);
            out.push(Route {
                layer,
                pos,
                ours: o.iter().map(|&e| e as u32).collect(),
                golden: g.iter().map(|&e| e as u32).collect(),
                margin,
            });
        }
    }
    Some((rows, out))
}

impl RoutingCheck {
    /// One line per route, at most `limit` of them.
    pub fn describe(routes: &[Route], limit: usize) -> String {
        let mut s: Vec<String> = routes
            .iter()
            .take(limit)
            .map(|r| {
                format!(
                    "layer {} token {}: {:?} vs golden {:?} (margin {:.1e})",
                    r.layer, r.pos, r.ours, r.golden, r.margin
                )
            })
            .collect();
        if routes.len() > limit {
            s.push(format!("… {} more", routes.len() - limit));
        }
        s.join("; ")
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use assay_engine::trace::Probe;

    fn stage(shape: Vec<usize>, values: Vec<f32>) -> Stage {
        Stage { shape, values }
    }

    #[test]
    fn differences_name_the_row_and_measure_the_golden_margin() {
        // Two tokens, 4 experts, top-2. Token 1 picks expert 2 where the golden picked 3.
        let golden = BTreeMap::from([
            ("ffn_moe_topk-0".to_string(), stage(vec![2, 2], vec![0.0, 1.0, 1.0, 3.0])),
            ("ffn_moe_probs-0".to_string(), stage(vec![2, 4], vec![0.4, 0.3, 0.2, 0.1, 0.1, 0.5, 0.199, 0.201])),
        ]);
        let mut run = Capture::default();
        run.record("ffn_moe_topk", Some(0), &[2, 2], &[0.0, 1.0, 1.0, 2.0]);
        let (rows, diffs) = differences(&run, &golden, 1, 2).unwrap();
        assert_eq!(rows, 2);
        assert_eq!(diffs.len(), 1);
        let d = &diffs[0];
        assert_eq!((d.layer, d.pos, d.ours.clone(), d.golden.clone()), (0, 1, vec![1, 2], vec![1, 3]));
        assert!((d.margin - 0.002).abs() < 1e-6, "{}", d.margin);
        // Same ids in another order: the gap between the swapped experts.
        run = Capture::default();
        run.record("ffn_moe_topk", Some(0), &[2, 2], &[1.0, 0.0, 1.0, 3.0]);
        let (_, diffs) = differences(&run, &golden, 1, 2).unwrap();
        assert!((diffs[0].margin - 0.1).abs() < 1e-6 && diffs[0].pos == 0, "{diffs:?}");
        // Without routing stages there is nothing to compare.
        assert!(differences(&run, &BTreeMap::new(), 1, 2).is_none());
    }
}
