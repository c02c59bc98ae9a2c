//! Run-time choice of instruction set for the optimized kernels.

use std::sync::OnceLock;

/// Instruction sets the optimized kernels use, best first.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum Isa {
    /// Plain Rust; compiles and runs everywhere.
    Portable,
    /// x86-64 AVX2 + FMA.
    Avx2,
    /// x86-64 AVX-512 F/BW/VL with VNNI.
    Avx512Vnni,
}

impl Isa {
    /// The best the CPU supports.
    pub fn detect() -> Isa {
        #[cfg(target_arch = "x86_64")]
        {
            if is_x86_feature_detected!("avx512f")
                && is_x86_feature_detected!("avx512bw")
                && is_x86_feature_detected!("avx512vl")
                && is_x86_feature_detected!("avx512vnni")
            {
                return Isa::Avx512Vnni;
            }
            if is_x86_feature_detected!("avx2") && is_x86_feature_detected!("fma") {
                return Isa::Avx2;
            }
        }
        Isa::Portable
    }

    /// Every level this CPU can run, for tests that compare each with the portable kernels.
    pub fn available() -> Vec<Isa> {
        [Isa::Portable, Isa::Avx2, Isa::Avx512Vnni].into_iter().filter(|&i| i <= Isa::detect()).collect()
    }

    pub fn name(self) -> &'static str {
        match self {
            Isa::Portable => "portable",
            Isa::Avx2 => "avx2",
            Isa::Avx512Vnni => "avx512vnni",
        }
    }
}

/// The level kernels use: the detected one, or a lower one named by `ASSAY_ISA`
/// (`portable`, `avx2`) for comparisons. A level the CPU lacks is never used.
pub fn isa() -> Isa {
    static ISA: OnceLock<Isa> = OnceLock::new();
    *ISA.get_or_init(|| {
        let best = Isa::detect();
        match std::env::var("ASSAY_ISA").as_deref() {
            Ok("portable") => Isa::Portable,
            Ok("avx2") => best.min(Isa::Avx2),
            _ => best,
        }
    })
}
