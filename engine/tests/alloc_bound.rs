//! Opening a file never allocates more than a small multiple of its size, whatever its bytes say.
//!
//! The bound checked here is
//!
//! ```text
//! peak heap bytes allocated by Model::open(path)  <=  48 × file_len + 256 KiB
//! ```
//!
//! measured whether `open` returns `Ok` or `Err`. Why this shape:
//!
//! - Tensor data stays in the memory map, so only the *descriptive* part of a file (GGUF
//!   metadata and tensor infos, the SafeTensors JSON header, APR's JSON metadata and index)
//!   becomes heap objects. Each stored entry costs at least a few bytes in the file and a fixed
//!   number of heap bytes in the view (a `String` header, a `MetaValue`, a `TensorInfo`, hash
//!   table slots, `Vec` slack while growing), so the peak is linear in the file's size; the factor
//!   48 covers that per-entry overhead with room. Measured: real-shaped files take 3–11 ×; the
//!   worst files we could build take 31 × (a SafeTensors header with a 50 000-dimension shape,
//!   buffered by the `safetensors` crate's serde parse) and 23 × (an APR vocabulary of 100 000
//!   one-letter tokens, parsed through a `serde_json::Value` tree). Both are tested below.
//! - The fixed 256 KiB covers what does not scale with the file: path buffers, hash tables'
//!   first allocations, error messages, the small `config.json` beside a SafeTensors file.
//! - A count read from the file (tensor count, key-value count, array length, string length) must
//!   never be believed before it is checked against the bytes that remain: a count of 2^60 in a
//!   1 KiB file would otherwise reserve exabytes. The explicit cases below check exactly that.
//!
//! Allocation is counted by a `#[global_allocator]` that wraps [`System`] and keeps, per thread,
//! the bytes currently allocated and their peak, so tests running in parallel do not see each
//! other's allocations. `realloc` is counted as allocate-new-then-free-old (the copy holds both
//! for a moment), which makes the measured peak an upper bound of the true one.
//!
//! Each property test prints the worst `peak / file_len` ratio it saw (`--nocapture`).

use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::Cell;
use std::path::Path;

use assay_engine::format::apr::AprWriter;
use assay_engine::format::gguf::GgufWriter;
use assay_engine::{DType, FormatError, FormatErrorKind, MetaArray, MetaValue, Model};
use proptest::prelude::*;
use proptest::sample::Index;
use proptest::test_runner::{Config, TestCaseError, TestRunner};
use safetensors::tensor::TensorView;
use safetensors::{Dtype, serialize_to_file};
use serde_json::{Map, json};

/// Counts the bytes each thread has allocated (live) and the peak of that count.
struct Counting;

thread_local! {
    // `const` initializers over `Cell`s: no lazy initialization, no destructor, so reaching them
    // from inside the allocator never allocates and never re-enters it.
    static CURRENT: Cell<isize> = const { Cell::new(0) };
    static PEAK: Cell<isize> = const { Cell::new(0) };
}

fn grow(bytes: usize) {
    let _ = CURRENT.try_with(|current| {
        let now = current.get().wrapping_add(bytes as isize);
        current.set(now);
        let _ = PEAK.try_with(|peak| {
            if now > peak.get() {
                peak.set(now);
            }
        });
    });
}

fn shrink(bytes: usize) {
    // Memory freed on another thread than the one that allocated it lowers this thread's count.
    let _ = CURRENT.try_with(|current| current.set(current.get().wrapping_sub(bytes as isize)));
}

// SAFETY: every call is forwarded to `System` unchanged; the bookkeeping only touches
// thread-local `Cell`s and never allocates.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        // SAFETY: forwarded with the caller's guarantees.
        let p = unsafe { System.alloc(layout) };
        if !p.is_null() {
            grow(layout.size());
        }
        p
    }

    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        // SAFETY: forwarded with the caller's guarantees.
        let p = unsafe { System.alloc_zeroed(layout) };
        if !p.is_null() {
            grow(layout.size());
        }
        p
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        // SAFETY: forwarded with the caller's guarantees.
        unsafe { System.dealloc(ptr, layout) };
        shrink(layout.size());
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        // SAFETY: forwarded with the caller's guarantees.
        let p = unsafe { System.realloc(ptr, layout, new_size) };
        if !p.is_null() {
            grow(new_size);
            shrink(layout.size());
        }
        p
    }
}

#[global_allocator]
static ALLOCATOR: Counting = Counting;

/// Runs `f` and returns the most bytes this thread had allocated during it, above what it had
/// allocated when `f` started.
fn peak_during(f: impl FnOnce()) -> usize {
    let start = CURRENT.with(Cell::get);
    PEAK.with(|p| p.set(start));
    f();
    let peak = PEAK.with(Cell::get);
    peak.saturating_sub(start).max(0) as usize
}

const FIXED_ALLOWANCE: usize = 256 << 10;
const PER_BYTE: usize = 48;

fn bound(file_len: usize) -> usize {
    PER_BYTE * file_len + FIXED_ALLOWANCE
}

/// One measurement: the peak of `Model::open` on a file of `file_len` bytes, and its result.
struct Measured {
    peak: usize,
    file_len: usize,
    result: Result<Model, FormatError>,
}

impl Measured {
    fn ratio(&self) -> f64 {
        self.peak as f64 / self.file_len.max(1) as f64
    }
    fn within_bound(&self) -> bool {
        self.peak <= bound(self.file_len)
    }
    fn describe(&self) -> String {
        let outcome = match &self.result {
            Ok(m) => format!("Ok ({} tensors)", m.tensors.len()),
            Err(e) => format!("Err ({})", e.kind),
        };
        format!(
            "peak {} B for a {}-byte file (ratio {:.2}, bound {} B): {outcome}",
            self.peak,
            self.file_len,
            self.ratio(),
            bound(self.file_len)
        )
    }
}

/// Writes `bytes` as `name` in `dir` and measures opening it.
fn measure_in(dir: &Path, name: &str, bytes: &[u8]) -> Measured {
    let path = dir.join(name);
    std::fs::write(&path, bytes).unwrap();
    let mut result = None;
    let peak = peak_during(|| result = Some(Model::open(&path)));
    Measured { peak, file_len: bytes.len(), result: result.unwrap() }
}

fn measure(bytes: &[u8]) -> Measured {
    let dir = tempfile::tempdir().unwrap();
    measure_in(dir.path(), "model.bin", bytes)
}

/// The worst ratios a property test saw, printed when it ends: over all files, and over files of
/// at least 1 KiB (below that the fixed part dominates the ratio).
#[derive(Default)]
struct Worst {
    all: Cell<(f64, usize, usize)>,
    large: Cell<(f64, usize, usize)>,
    share_of_bound: Cell<f64>,
    cases: Cell<usize>,
    ok: Cell<usize>,
}

impl Worst {
    fn note(&self, m: &Measured) {
        self.cases.set(self.cases.get() + 1);
        self.ok.set(self.ok.get() + usize::from(m.result.is_ok()));
        let this = (m.ratio(), m.peak, m.file_len);
        if this.0 > self.all.get().0 {
            self.all.set(this);
        }
        if m.file_len >= 1024 && this.0 > self.large.get().0 {
            self.large.set(this);
        }
        self.share_of_bound.set(self.share_of_bound.get().max(m.peak as f64 / bound(m.file_len) as f64));
    }
    fn report(&self, format: &str) {
        let (all, all_peak, all_len) = self.all.get();
        let (large, large_peak, large_len) = self.large.get();
        println!(
            "{format}: {} cases ({} opened Ok); worst peak/file_len {all:.2} ({all_peak} B for {all_len} B); \
             over files >= 1 KiB {large:.2} ({large_peak} B for {large_len} B); at most {:.1}% of the bound",
            self.cases.get(),
            self.ok.get(),
            100.0 * self.share_of_bound.get()
        );
    }
}

/// One corruption of a file.
#[derive(Clone, Debug)]
enum Edit {
    /// Overwrite one byte.
    Byte(Index, u8),
    /// Overwrite a little-endian word of 4 or 8 bytes (clipped at the end): counts and lengths.
    Word(Index, u64, bool),
    /// Cut the file.
    Truncate(Index),
}

fn any_word() -> impl Strategy<Value = u64> {
    prop_oneof![
        any::<u64>(),
        0u64..1024,
        (0u32..64).prop_map(|k| 1u64 << k),
        (0u32..64).prop_map(|k| (1u64 << k) - 1),
        Just(u64::MAX),
    ]
}

fn edits() -> impl Strategy<Value = Vec<Edit>> {
    let edit = prop_oneof![
        6 => (any::<Index>(), any::<u8>()).prop_map(|(at, b)| Edit::Byte(at, b)),
        3 => (any::<Index>(), any_word(), any::<bool>()).prop_map(|(at, w, wide)| Edit::Word(at, w, wide)),
        1 => any::<Index>().prop_map(Edit::Truncate),
    ];
    prop::collection::vec(edit, 0..6)
}

fn apply(bytes: &mut Vec<u8>, edits: &[Edit]) {
    for edit in edits {
        if bytes.is_empty() {
            return;
        }
        match edit {
            Edit::Byte(at, b) => {
                let i = at.index(bytes.len());
                bytes[i] = *b;
            }
            Edit::Word(at, w, wide) => {
                let i = at.index(bytes.len());
                let le = w.to_le_bytes();
                let n = (if *wide { 8 } else { 4 }).min(bytes.len() - i);
                bytes[i..i + n].copy_from_slice(&le[..n]);
            }
            Edit::Truncate(at) => bytes.truncate(at.index(bytes.len())),
        }
    }
}

fn runner() -> TestRunner {
    TestRunner::new(Config { cases: 256, failure_persistence: None, ..Config::default() })
}

fn check(m: &Measured) -> Result<(), TestCaseError> {
    prop_assert!(m.within_bound(), "{}", m.describe());
    Ok(())
}

// ---------------------------------------------------------------------------------------------
// GGUF

/// A small valid GGUF: scalars, string arrays (tokens, merges), a u32 array, and a few tensors.
#[derive(Clone, Debug)]
struct GgufSpec {
    tokens: Vec<String>,
    merges: Vec<String>,
    per_layer: Vec<u32>,
    tensors: Vec<(DType, Vec<u64>)>,
}

fn gguf_spec() -> impl Strategy<Value = GgufSpec> {
    let tensor = prop_oneof![
        (1u64..4, 1u64..3).prop_map(|(r, c)| (DType::F32, vec![r, c])),
        (1u64..4).prop_map(|c| (DType::F16, vec![c])),
        (1u64..3, 1u64..3).prop_map(|(r, b)| (DType::Q8_0, vec![r, 32 * b])),
    ];
    (
        prop::collection::vec("[a-z<>]{0,6}", 0..400),
        prop::collection::vec("[a-z]{1,3} [a-z]{1,3}", 0..200),
        prop::collection::vec(any::<u32>(), 0..8),
        prop::collection::vec(tensor, 0..4),
    )
        .prop_map(|(tokens, merges, per_layer, tensors)| GgufSpec { tokens, merges, per_layer, tensors })
}

fn gguf_bytes(spec: &GgufSpec) -> Vec<u8> {
    let mut w = GgufWriter::new();
    w.metadata("general.architecture", MetaValue::Str("llama".into()))
        .metadata("general.name", MetaValue::Str("tiny".into()))
        .metadata("llama.block_count", MetaValue::U32(spec.per_layer.len() as u32))
        .metadata("llama.rope.freq_base", MetaValue::F32(10000.0))
        .metadata("llama.feed_forward_length", MetaValue::Array(MetaArray::U32(spec.per_layer.clone())))
        .metadata("tokenizer.ggml.model", MetaValue::Str("gpt2".into()))
        .metadata("tokenizer.ggml.tokens", MetaValue::Array(MetaArray::Str(spec.tokens.clone())))
        .metadata("tokenizer.ggml.merges", MetaValue::Array(MetaArray::Str(spec.merges.clone())))
        .metadata("tokenizer.ggml.bos_token_id", MetaValue::U32(1));
    let mut data = Vec::new();
    for (i, (dtype, shape)) in spec.tensors.iter().enumerate() {
        w.tensor(format!("blk.{i}.weight"), *dtype, shape).unwrap();
        data.push(vec![i as u8 + 1; dtype.byte_size(shape).unwrap() as usize]);
    }
    let refs: Vec<&[u8]> = data.iter().map(Vec::as_slice).collect();
    w.to_bytes(&refs).unwrap()
}

#[test]
fn gguf_corruptions_stay_under_the_bound() {
    let worst = Worst::default();
    runner()
        .run(&(gguf_spec(), edits()), |(spec, edits)| {
            let mut bytes = gguf_bytes(&spec);
            apply(&mut bytes, &edits);
            let m = measure(&bytes);
            worst.note(&m);
            check(&m)
        })
        .unwrap();
    worst.report("GGUF");
}

/// A valid GGUF with `key` holding `value`, and where `value`'s payload starts in the file.
fn gguf_with(key: &str, value: MetaValue) -> (Vec<u8>, usize) {
    let mut w = GgufWriter::new();
    w.metadata("general.architecture", MetaValue::Str("llama".into())).metadata(key, value);
    w.tensor("token_embd.weight", DType::F32, &[4, 8]).unwrap();
    let bytes = w.to_bytes(&[&[0u8; 128]]).unwrap();
    // key: u64 length + bytes; then the u32 value type; then the payload.
    let needle = [&(key.len() as u64).to_le_bytes()[..], key.as_bytes()].concat();
    let at = bytes.windows(needle.len()).position(|w| w == needle).unwrap() + needle.len() + 4;
    (bytes, at)
}

fn put_u64(bytes: &mut [u8], at: usize, v: u64) {
    bytes[at..at + 8].copy_from_slice(&v.to_le_bytes());
}

/// Asserts an error under the bound and returns its kind.
fn hostile(bytes: &[u8]) -> FormatErrorKind {
    let m = measure(bytes);
    assert!(m.within_bound(), "{}", m.describe());
    println!("{}", m.describe());
    match m.result {
        Ok(_) => panic!("a hostile file was accepted: {}", m.describe()),
        Err(e) => e.kind,
    }
}

#[test]
fn a_gguf_tensor_count_of_2_pow_60_fails_without_allocating() {
    let (mut bytes, _) = gguf_with("general.name", MetaValue::Str("x".into()));
    put_u64(&mut bytes, 8, 1 << 60);
    let k = hostile(&bytes);
    assert!(matches!(k, FormatErrorKind::TooLarge { found, .. } if found == 1 << 60), "{k}");
}

#[test]
fn a_gguf_kv_count_of_2_pow_60_fails_without_allocating() {
    let (mut bytes, _) = gguf_with("general.name", MetaValue::Str("x".into()));
    put_u64(&mut bytes, 16, 1 << 60);
    let k = hostile(&bytes);
    assert!(matches!(k, FormatErrorKind::TooLarge { found, .. } if found == 1 << 60), "{k}");
}

#[test]
fn a_gguf_array_count_of_2_pow_60_fails_without_allocating() {
    for array in [
        MetaArray::U32(vec![1, 2, 3]),
        MetaArray::U8(vec![1, 2, 3]),
        MetaArray::Str(vec!["a".into(), "b".into()]),
        MetaArray::Bool(vec![true]),
    ] {
        let (mut bytes, at) = gguf_with("llama.some_array", MetaValue::Array(array));
        // ARRAY payload: u32 element type, then the u64 count.
        put_u64(&mut bytes, at + 4, 1 << 60);
        let k = hostile(&bytes);
        assert!(matches!(k, FormatErrorKind::TooLarge { found, .. } if found == 1 << 60), "{k}");
        // Under the cap but far beyond the file: refused as truncated, still without allocating.
        put_u64(&mut bytes, at + 4, 1 << 27);
        let k = hostile(&bytes);
        assert!(matches!(k, FormatErrorKind::Truncated { .. }), "{k}");
    }
}

#[test]
fn a_gguf_string_length_of_2_pow_62_fails_without_allocating() {
    // As a value.
    let (mut bytes, at) = gguf_with("general.name", MetaValue::Str("tiny".into()));
    put_u64(&mut bytes, at, 1 << 62);
    let k = hostile(&bytes);
    assert!(matches!(&k, FormatErrorKind::Truncated { need, .. } if *need == 1 << 62), "{k}");
    // As an element of a string array.
    let (mut bytes, at) = gguf_with("tokenizer.ggml.tokens", MetaValue::Array(MetaArray::Str(vec!["a".into(); 3])));
    put_u64(&mut bytes, at + 4 + 8, 1 << 62);
    let k = hostile(&bytes);
    assert!(matches!(&k, FormatErrorKind::Truncated { need, .. } if *need == 1 << 62), "{k}");
    // As a key (the first key sits right after the 24-byte preamble).
    let (mut bytes, _) = gguf_with("general.name", MetaValue::Str("tiny".into()));
    put_u64(&mut bytes, 24, 1 << 62);
    let k = hostile(&bytes);
    assert!(matches!(&k, FormatErrorKind::Truncated { need, .. } if *need == 1 << 62), "{k}");
}

// ---------------------------------------------------------------------------------------------
// APR

#[derive(Clone, Debug)]
struct AprSpec {
    vocabulary: Vec<String>,
    extra: Vec<(String, i64)>,
    tensors: Vec<(DType, Vec<u64>)>,
    fix_crcs: bool,
}

fn apr_spec() -> impl Strategy<Value = AprSpec> {
    let tensor = prop_oneof![
        (1u64..4, 1u64..4).prop_map(|(r, c)| (DType::F32, vec![r, c])),
        (1u64..6).prop_map(|c| (DType::F16, vec![c])),
        (1u64..3, 1u64..40).prop_map(|(r, c)| (DType::AprQ4, vec![r, c])),
        (1u64..40).prop_map(|c| (DType::AprQ8, vec![c])),
    ];
    (
        prop::collection::vec("[a-z]{0,6}", 0..300),
        prop::collection::vec(("[a-z_]{1,10}", any::<i64>()), 0..10),
        prop::collection::vec(tensor, 0..5),
        any::<bool>(),
    )
        .prop_map(|(vocabulary, extra, tensors, fix_crcs)| AprSpec { vocabulary, extra, tensors, fix_crcs })
}

fn apr_bytes(spec: &AprSpec) -> Vec<u8> {
    let mut metadata = Map::new();
    for (k, v) in &spec.extra {
        metadata.insert(format!("x_{k}"), json!(v));
    }
    for (k, v) in [
        ("architecture", json!("llama")),
        ("model_type", json!("llama")),
        ("hidden_size", json!(8)),
        ("num_layers", json!(1)),
        ("rope_theta", json!(10000.0)),
        ("rope_scaling", json!({"factor": 2.0, "type": "linear"})),
    ] {
        metadata.insert(k.into(), v);
    }
    if !spec.vocabulary.is_empty() {
        metadata.insert("tokenizer.vocabulary".into(), json!(spec.vocabulary));
        metadata.insert("tokenizer.merges".into(), json!(["a b", "ab c"]));
        metadata.insert("tokenizer.model_type".into(), json!("bpe"));
    }
    let mut w = AprWriter::new(metadata);
    for (i, (dtype, dims)) in spec.tensors.iter().enumerate() {
        let n = dtype.byte_size(dims).unwrap() as usize;
        w.tensor(format!("t{i}"), *dtype, dims, vec![i as u8 + 1; n]).unwrap();
    }
    w.to_bytes().unwrap()
}

/// Recomputes both CRCs, so a corruption reaches the checks behind them.
fn fix_apr_crcs(b: &mut [u8]) {
    if b.len() < 68 {
        return;
    }
    let mut h = crc32fast::Hasher::new();
    h.update(&b[..40]);
    h.update(&b[44..64]);
    let crc = h.finalize();
    b[40..44].copy_from_slice(&crc.to_le_bytes());
    let body = b.len() - 4;
    let crc = crc32fast::hash(&b[..body]);
    b[body..].copy_from_slice(&crc.to_le_bytes());
}

#[test]
fn apr_corruptions_stay_under_the_bound() {
    let worst = Worst::default();
    runner()
        .run(&(apr_spec(), edits()), |(spec, edits)| {
            let mut bytes = apr_bytes(&spec);
            apply(&mut bytes, &edits);
            if spec.fix_crcs {
                fix_apr_crcs(&mut bytes);
            }
            let m = measure(&bytes);
            worst.note(&m);
            check(&m)
        })
        .unwrap();
    worst.report("APR");
}

#[test]
fn an_apr_tensor_count_of_2_pow_32_minus_1_fails_without_allocating() {
    let spec = AprSpec { vocabulary: vec![], extra: vec![], tensors: vec![(DType::F32, vec![2, 2])], fix_crcs: true };
    let mut bytes = apr_bytes(&spec);
    bytes[8..12].copy_from_slice(&u32::MAX.to_le_bytes());
    fix_apr_crcs(&mut bytes);
    let k = hostile(&bytes);
    assert!(matches!(k, FormatErrorKind::TooLarge { .. }), "{k}");
}

// ---------------------------------------------------------------------------------------------
// SafeTensors

#[derive(Clone, Debug)]
struct StSpec {
    tensors: Vec<(Dtype, Vec<usize>)>,
    metadata: Vec<(String, String)>,
}

fn st_spec() -> impl Strategy<Value = StSpec> {
    let dtype = prop::sample::select(vec![Dtype::F32, Dtype::F16, Dtype::BF16, Dtype::I64, Dtype::U8]);
    let tensor = (dtype, prop::collection::vec(1usize..5, 0..4));
    (prop::collection::vec(tensor, 0..12), prop::collection::vec(("[a-z]{1,8}", "[a-z0-9]{0,12}"), 0..4))
        .prop_map(|(tensors, metadata)| StSpec { tensors, metadata })
}

fn st_bytes(dir: &Path, spec: &StSpec) -> Vec<u8> {
    let data: Vec<Vec<u8>> = spec
        .tensors
        .iter()
        .enumerate()
        .map(|(i, (dtype, shape))| vec![i as u8; shape.iter().product::<usize>() * dtype.bitsize() / 8])
        .collect();
    let names: Vec<String> = (0..spec.tensors.len()).map(|i| format!("model.layers.{i}.weight")).collect();
    let views: Vec<(&str, TensorView<'_>)> = spec
        .tensors
        .iter()
        .zip(&data)
        .zip(&names)
        .map(|(((dtype, shape), d), name)| (name.as_str(), TensorView::new(*dtype, shape.clone(), d).unwrap()))
        .collect();
    let info = (!spec.metadata.is_empty()).then(|| spec.metadata.iter().cloned().collect());
    let path = dir.join("pristine.safetensors");
    serialize_to_file(views, info, &path).unwrap();
    let bytes = std::fs::read(&path).unwrap();
    std::fs::remove_file(&path).unwrap();
    bytes
}

fn small_config(dir: &Path) {
    let config = json!({
        "architectures": ["LlamaForCausalLM"],
        "model_type": "llama",
        "hidden_size": 8,
        "num_hidden_layers": 1,
        "rms_norm_eps": 1e-5,
        "rope_scaling": {"factor": 2.0, "rope_type": "linear"},
        "bos_token_id": 1,
        "eos_token_id": 2,
    });
    std::fs::write(dir.join("config.json"), config.to_string()).unwrap();
}

#[test]
fn safetensors_corruptions_stay_under_the_bound() {
    let worst = Worst::default();
    runner()
        .run(&(st_spec(), edits()), |(spec, edits)| {
            let dir = tempfile::tempdir().unwrap();
            small_config(dir.path());
            let mut bytes = st_bytes(dir.path(), &spec);
            apply(&mut bytes, &edits);
            let m = measure_in(dir.path(), "model.safetensors", &bytes);
            worst.note(&m);
            check(&m)
        })
        .unwrap();
    worst.report("SafeTensors");
}

// ---------------------------------------------------------------------------------------------
// Valid files built to maximise entries per byte: the per-entry overhead behind the factor.

fn dense(what: &str, bytes: &[u8]) -> Measured {
    let m = measure(bytes);
    println!("{what}: {}", m.describe());
    m
}

#[test]
fn gguf_files_dense_in_small_entries() {
    // Many 1-byte keys' worth of key-values: 3-byte keys with u8 values (16 bytes each).
    let mut w = GgufWriter::new();
    w.metadata("general.architecture", MetaValue::Str("llama".into()));
    for i in 0..20_000u32 {
        w.metadata(format!("{:03x}", i % 4096) + &"k".repeat((i / 4096) as usize), MetaValue::U8(1));
    }
    let m = dense("GGUF 20000 tiny key-values", &w.to_bytes(&[]).unwrap());
    assert!(m.result.is_ok() && m.within_bound(), "{}", m.describe());

    // An array of 100 000 empty strings (8 bytes each).
    let mut w = GgufWriter::new();
    w.metadata("general.architecture", MetaValue::Str("llama".into()))
        .metadata("tokenizer.ggml.tokens", MetaValue::Array(MetaArray::Str(vec![String::new(); 100_000])));
    let m = dense("GGUF 100000 empty strings", &w.to_bytes(&[]).unwrap());
    assert!(m.result.is_ok() && m.within_bound(), "{}", m.describe());

    // 20 000 one-element I8 tensors with 1-byte alignment.
    let mut w = GgufWriter::new();
    w.metadata("general.architecture", MetaValue::Str("llama".into())).metadata("general.alignment", MetaValue::U32(1));
    for i in 0..20_000 {
        w.tensor(format!("{i:x}"), DType::I8, &[]).unwrap();
    }
    let data = vec![[7u8].as_slice(); 20_000];
    let m = dense("GGUF 20000 tiny tensors", &w.to_bytes(&data).unwrap());
    assert!(m.result.is_ok() && m.within_bound(), "{}", m.describe());
}

#[test]
fn apr_files_dense_in_small_entries() {
    // A vocabulary of 50 000 six-letter tokens in the JSON metadata (9 bytes of JSON each).
    let spec = AprSpec {
        vocabulary: (0..50_000u32).map(|i| format!("{i:06}")).collect(),
        extra: vec![],
        tensors: vec![(DType::F32, vec![1])],
        fix_crcs: false,
    };
    let m = dense("APR 50000 six-letter tokens", &apr_bytes(&spec));
    assert!(m.result.is_ok() && m.within_bound(), "{}", m.describe());

    // 20 000 one-element U8 tensors (each padded to 64 bytes of data).
    let mut w = AprWriter::new(json!({"architecture": "llama"}).as_object().unwrap().clone());
    for i in 0..20_000 {
        w.tensor(format!("{i:05x}"), DType::U8, &[1], vec![1u8]).unwrap();
    }
    let m = dense("APR 20000 tiny tensors", &w.to_bytes().unwrap());
    assert!(m.result.is_ok() && m.within_bound(), "{}", m.describe());
}

/// The densest APR metadata: JSON metadata goes through a `serde_json::Value` tree before it is
/// flattened into the view, so a one-letter token (4 bytes of JSON) costs a 32-byte `Value` plus a
/// 24-byte `String`: about 23 × the file.
#[test]
fn apr_metadata_of_one_letter_tokens_stays_under_the_bound() {
    let spec = AprSpec {
        vocabulary: (0..100_000).map(|i| ((b'a' + (i % 26) as u8) as char).to_string()).collect(),
        extra: vec![],
        tensors: vec![(DType::F32, vec![1])],
        fix_crcs: false,
    };
    let m = dense("APR 100000 one-letter tokens", &apr_bytes(&spec));
    assert!(m.result.is_ok() && m.within_bound(), "{}", m.describe());
}

#[test]
fn safetensors_files_dense_in_small_entries() {
    // 20 000 one-byte tensors.
    let dir = tempfile::tempdir().unwrap();
    let data = [1u8];
    let names: Vec<String> = (0..20_000).map(|i| format!("{i:x}")).collect();
    let views: Vec<(&str, TensorView<'_>)> =
        names.iter().map(|n| (n.as_str(), TensorView::new(Dtype::U8, vec![], &data).unwrap())).collect();
    let path = dir.path().join("model.safetensors");
    serialize_to_file(views, None, &path).unwrap();
    let m = dense("SafeTensors 20000 tiny tensors", &std::fs::read(&path).unwrap());
    assert!(m.result.is_ok() && m.within_bound(), "{}", m.describe());
}

/// The densest SafeTensors header: the `safetensors` crate deserializes it through
/// `#[serde(flatten)]`, which buffers every JSON value as serde's 32-byte `Content`, so a shape of
/// 50 000 ones (2 bytes each in the file) briefly takes about 31 × the file. The crate caps
/// headers at 100 MB.
#[test]
fn a_safetensors_shape_of_50000_ones_stays_under_the_bound() {
    let shape = vec!["1"; 50_000].join(",");
    let header = format!(r#"{{"a":{{"dtype":"U8","shape":[{shape}],"data_offsets":[0,1]}}}}"#);
    let mut bytes = (header.len() as u64).to_le_bytes().to_vec();
    bytes.extend(header.as_bytes());
    bytes.push(9);
    let m = dense("SafeTensors shape of 50000 ones", &bytes);
    assert!(m.result.is_ok() && m.within_bound(), "{}", m.describe());
}

/// The allocator counts what it should: a 1 MiB vector peaks at least 1 MiB, and is returned.
#[test]
fn the_counter_counts() {
    let before = CURRENT.with(Cell::get);
    let peak = peak_during(|| {
        let v = vec![1u8; 1 << 20];
        std::hint::black_box(&v);
    });
    assert!(peak >= 1 << 20, "{peak}");
    assert_eq!(CURRENT.with(Cell::get), before);
    // Growth by doubling counts old and new buffers together.
    let peak = peak_during(|| {
        let mut v: Vec<u64> = Vec::new();
        for i in 0..1000 {
            v.push(i);
        }
        std::hint::black_box(&v);
    });
    assert!(peak >= 8 * 1000, "{peak}");
}
