//! Activations, elementwise, in f64.

/// x · sigmoid(x).
pub fn silu(x: f32) -> f32 {
    let x = f64::from(x);
    (x / (1.0 + (-x).exp())) as f32
}

/// GELU, tanh approximation (GPT-2's `gelu_new`, llama.cpp's GELU).
pub fn gelu_tanh(x: f32) -> f32 {
    let x = f64::from(x);
    let c = (2.0 / std::f64::consts::PI).sqrt();
    (0.5 * x * (1.0 + (c * (x + 0.044715 * x.powi(3))).tanh())) as f32
}

/// GELU, exact: x · Φ(x), with Φ through erf.
pub fn gelu_erf(x: f32) -> f32 {
    let x = f64::from(x);
    (0.5 * x * (1.0 + erf(x / std::f64::consts::SQRT_2))) as f32
}

/// erf to double precision (W. J. Cody's rational approximations, as in most libms): |error|
/// < 1e-15 over the whole range. Rust's std has no erf.
#[allow(clippy::excessive_precision)] // the published coefficients, digit for digit
fn erf(x: f64) -> f64 {
    let ax = x.abs();
    let r = if ax < 0.5 {
        // erf(x) = x · P(x²)/Q(x²)
        const P: [f64; 5] =
            [3.209377589138469e3, 3.774852376853020e2, 1.138641541510502e2, 3.161123743870566, 1.857777061846032e-1];
        const Q: [f64; 5] = [2.844236833439171e3, 1.282616526077372e3, 2.440246379344442e2, 2.360129095234412e1, 1.0];
        let z = ax * ax;
        let num = P[4].mul_add(z, P[3]).mul_add(z, P[2]).mul_add(z, P[1]).mul_add(z, P[0]);
        let den = Q[4].mul_add(z, Q[3]).mul_add(z, Q[2]).mul_add(z, Q[1]).mul_add(z, Q[0]);
        return x * num / den;
    } else if ax < 4.0 {
        const P: [f64; 9] = [
            1.23033935479799725e3,
            2.05107837782607147e3,
            1.71204761263407058e3,
            8.81952221241769090e2,
            2.98635138197400131e2,
            6.61191906371416295e1,
            8.88314979438837594,
            5.64188496988670089e-1,
            2.15311535474403846e-8,
        ];
        const Q: [f64; 9] = [
            1.23033935480374942e3,
            3.43936767414372164e3,
            4.36261909014324716e3,
            3.29079923573345963e3,
            1.62138957456669019e3,
            5.37181101862009858e2,
            1.17693950891312499e2,
            1.57449261107098347e1,
            1.0,
        ];
        let num = P.iter().rev().fold(0.0f64, |acc, &p| acc.mul_add(ax, p));
        let den = Q.iter().rev().fold(0.0f64, |acc, &q| acc.mul_add(ax, q));
        1.0 - (-ax * ax).exp() * num / den
    } else {
        const P: [f64; 6] = [
            -6.58749161529837803e-4,
            -1.60837851487422766e-2,
            -1.25781726111229246e-1,
            -3.60344899949804439e-1,
            -3.05326634961232344e-1,
            -1.63153871373020978e-2,
        ];
        const Q: [f64; 6] = [
            2.33520497626869185e-3,
            6.05183413124413191e-2,
            5.27905102951428412e-1,
            1.87295284992346725,
            2.56852019228982242,
            1.0,
        ];
        let z = 1.0 / (ax * ax);
        let num = P.iter().rev().fold(0.0f64, |acc, &p| acc.mul_add(z, p));
        let den = Q.iter().rev().fold(0.0f64, |acc, &q| acc.mul_add(z, q));
        let frac_1_sqrt_pi = 0.564_189_583_547_756_3;
        1.0 - (-ax * ax).exp() / ax * (frac_1_sqrt_pi + z * num / den)
    };
    if x < 0.0 { -r } else { r }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn erf_matches_known_values() {
        // erf values to 16 digits (A&S tables / mpmath).
        for (x, want) in [
            (0.0, 0.0),
            (0.1, 0.1124629160182849),
            (0.5, 0.5204998778130465),
            (1.0, 0.8427007929497149),
            (2.0, 0.9953222650189527),
            (3.5, 0.9999992569016276),
            (5.0, 0.9999999999984626),
            (-1.0, -0.8427007929497149),
        ] {
            assert!((erf(x) - want).abs() < 1e-14, "erf({x}) = {} vs {want}", erf(x));
        }
    }

    #[test]
    fn activations_at_known_points() {
        assert_eq!(silu(0.0), 0.0);
        assert!((silu(1.0) - 0.731_058_6).abs() < 1e-6);
        assert!((gelu_erf(1.0) - 0.841_344_7).abs() < 1e-6);
        assert!((gelu_tanh(1.0) - 0.841_192).abs() < 1e-6);
        assert!(gelu_erf(-10.0).abs() < 1e-20);
    }
}
