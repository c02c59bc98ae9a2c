//! The CUDA kernels as one source, compiled at run time by NVRTC: `kernels.cu` is a port of the
//! WGPU backend's WGSL (same algorithms, same f32 operations in the same order, one thread per
//! output element, row or group), with one `matmul_D` / `get_rows_D` pair per weight dtype.
//!
//! NVRTC is loaded dynamically (`libnvrtc.so.12`, e.g. from the `nvidia-cuda-nvrtc-cu12` wheel on
//! `LD_LIBRARY_PATH`); compiling needs no GPU. The source is compiled with `--fmad=false` so no
//! multiply and add contract into an FMA: weights decode with their CPU dequantizer's float
//! operations, bit-exact, and sums round as the WGSL's do.

use cudarc::nvrtc::{CompileError, CompileOptions, Ptx};

/// The kernels' CUDA C source.
pub const SOURCE: &str = include_str!("kernels.cu");

/// Every kernel name the backend launches, for checks.
pub const KERNELS: &[&str] = &[
    "add",
    "mul",
    "add_rows",
    "sigmoid_gate",
    "silu",
    "gelu_tanh",
    "gelu_erf",
    "copy_cols",
    "soft_max",
    "normalize_rows",
    "rms_norm",
    "layer_norm",
    "rope",
    "matmul_f32",
    "get_rows_f32",
    "matmul_f16",
    "get_rows_f16",
    "matmul_bf16",
    "get_rows_bf16",
    "matmul_q8_0",
    "get_rows_q8_0",
    "matmul_q4_0",
    "get_rows_q4_0",
    "matmul_q4_1",
    "get_rows_q4_1",
    "matmul_q5_0",
    "get_rows_q5_0",
    "matmul_q5_1",
    "get_rows_q5_1",
    "matmul_q2_k",
    "get_rows_q2_k",
    "matmul_q3_k",
    "get_rows_q3_k",
    "matmul_q4_k",
    "get_rows_q4_k",
    "matmul_q5_k",
    "get_rows_q5_k",
    "matmul_q6_k",
    "get_rows_q6_k",
    "matmul_apr_q4",
    "get_rows_apr_q4",
    "matmul_apr_q8",
    "get_rows_apr_q8",
    "attention",
    "take_cols",
    "take_rows",
    "put_rows",
    "moe_sum",
];

/// The NVRTC options: PTX for a virtual architecture every supported GPU JITs from (no device
/// is needed to compile), IEEE division and square root, no denormal flushing and no FMA
/// contraction.
fn options() -> CompileOptions {
    CompileOptions {
        arch: Some("compute_70"),
        fmad: Some(false),
        ftz: Some(false),
        prec_div: Some(true),
        prec_sqrt: Some(true),
        use_fast_math: Some(false),
        name: Some("assay_kernels.cu".to_owned()),
        ..Default::default()
    }
}

/// Where `.ci/run` unpacks the NVRTC wheel: `~/.cache/assay/nvrtc/nvidia/cuda_nvrtc/lib`.
fn wheel_dir() -> Option<std::path::PathBuf> {
    let home = std::env::var_os("HOME")?;
    Some(std::path::Path::new(&home).join(".cache/assay/nvrtc/nvidia/cuda_nvrtc/lib"))
}

/// Whether cudarc can load NVRTC. The loader searches only `LD_LIBRARY_PATH` and the system
/// paths, read once at process start; so a `libnvrtc.so.12` in `ASSAY_NVRTC_DIR` or the wheel
/// directory is loaded first by its full path, and cudarc's own `dlopen` of the same soname then
/// finds it already loaded. The handle is kept for the life of the process.
fn preload() -> bool {
    static LOADED: std::sync::OnceLock<bool> = std::sync::OnceLock::new();
    *LOADED.get_or_init(|| {
        if unsafe { cudarc::nvrtc::sys::is_culib_present() } {
            return true;
        }
        let dirs = std::env::var_os("ASSAY_NVRTC_DIR").map(std::path::PathBuf::from).into_iter().chain(wheel_dir());
        for dir in dirs {
            // SAFETY: loading NVRTC runs its initializers, as cudarc's own load would.
            if let Ok(lib) = unsafe {
                libloading::os::unix::Library::open(
                    Some(dir.join("libnvrtc.so.12")),
                    libloading::os::unix::RTLD_NOW | libloading::os::unix::RTLD_GLOBAL,
                )
            } {
                std::mem::forget(lib);
                return unsafe { cudarc::nvrtc::sys::is_culib_present() };
            }
        }
        false
    })
}

/// Compiles [`SOURCE`] to PTX; `Err` (with the NVRTC log) if NVRTC is missing or the source does
/// not compile.
pub fn compile() -> Result<Ptx, String> {
    // cudarc panics on first use when the library cannot be loaded: ask first.
    if !preload() {
        return Err(format!(
            "libnvrtc not found: install nvidia-cuda-nvrtc-cu12 (`.ci/run` unpacks it under {}), point \
             ASSAY_NVRTC_DIR at its lib directory, or put that directory on LD_LIBRARY_PATH",
            wheel_dir().map_or("~/.cache/assay/nvrtc".into(), |d| d.display().to_string())
        ));
    }
    cudarc::nvrtc::compile_ptx_with_opts(SOURCE, options()).map_err(|e| match e {
        CompileError::CompileError { nvrtc, options, log } => {
            format!(
                "NVRTC could not compile the CUDA kernels ({nvrtc:?}, options {options:?}):\n{}",
                log.to_string_lossy()
            )
        }
        other => format!("NVRTC failed: {other:?}"),
    })
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeSet;

    use super::*;

    /// The `.entry` names of a PTX module.
    fn entries(ptx: &str) -> BTreeSet<String> {
        ptx.lines()
            .filter_map(|l| {
                let rest = l.split(".entry").nth(1)?;
                let name: String =
                    rest.trim_start().chars().take_while(|c| c.is_ascii_alphanumeric() || *c == '_').collect();
                (!name.is_empty()).then_some(name)
            })
            .collect()
    }

    #[test]
    fn every_kernel_compiles_to_ptx_with_nvrtc() {
        let ptx = compile().unwrap_or_else(|e| panic!("{e}")).to_src();
        let found = entries(&ptx);
        for k in KERNELS {
            assert!(found.contains(*k), "no `.entry {k}` in the PTX; entries: {found:?}");
        }
        let listed: BTreeSet<String> = KERNELS.iter().map(|k| (*k).to_owned()).collect();
        assert_eq!(found, listed, "the PTX's entries are not exactly KERNELS");
    }

    /// The names of the `extern "C" __global__` functions of a CUDA source, with the one-argument
    /// macros that define kernels (`NAME_##D`) expanded at each of their invocations.
    fn global_functions(src: &str) -> BTreeSet<String> {
        let ident = |s: &str| -> String {
            s.chars().take_while(|c| c.is_ascii_alphanumeric() || *c == '_' || *c == '#').collect()
        };
        // (macro name, parameter) of each `#define M(P)`, with the text up to the next `#define`.
        let mut templates: Vec<(String, String, Vec<String>)> = Vec::new();
        let mut names = BTreeSet::new();
        let mut current: Option<usize> = None;
        for line in src.lines() {
            let trimmed = line.trim_start();
            if let Some(def) = trimmed.strip_prefix("#define ") {
                let macro_name = ident(def);
                current = None;
                if let Some(param) = def[macro_name.len()..].strip_prefix('(') {
                    let param = ident(param);
                    templates.push((macro_name, param, Vec::new()));
                    current = Some(templates.len() - 1);
                }
            }
            let continued = line.trim_end().ends_with('\\');
            for (i, _) in line.match_indices("extern \"C\" __global__ void ") {
                let name = ident(&line[i + "extern \"C\" __global__ void ".len()..]);
                match current {
                    Some(t) => templates[t].2.push(name),
                    None => {
                        names.insert(name);
                    }
                }
            }
            if !continued {
                current = None;
            }
        }
        for line in src.lines() {
            for (macro_name, param, bodies) in &templates {
                if let Some(arg) = line.trim_start().strip_prefix(&format!("{macro_name}(")) {
                    let arg = ident(arg);
                    for b in bodies {
                        names.insert(b.replace(&format!("##{param}"), &arg));
                    }
                }
            }
        }
        names
    }

    #[test]
    fn kernels_lists_exactly_the_global_functions_of_the_source() {
        let found = global_functions(SOURCE);
        let listed: BTreeSet<String> = KERNELS.iter().map(|k| (*k).to_owned()).collect();
        assert_eq!(listed.len(), KERNELS.len(), "KERNELS names a kernel twice");
        assert!(found.iter().all(|n| !n.contains('#')), "an unexpanded macro name: {found:?}");
        assert_eq!(found, listed);
        // 13 plain ops, 2 per weight dtype, attention and 4 gathers.
        assert_eq!(KERNELS.len(), 13 + 2 * 15 + 1 + 4);
    }
}
