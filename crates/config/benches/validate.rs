//! `drydock validate`'s work — read, parse and evaluate into the model, as
//! [`drydock_config::load`] does — against hcl-edit parsing the same fleet written as HCL, in
//! one run (issue 13). Run: `cargo bench -p drydock-config --bench validate`.
//!
//! The fleet is [`drydock_testgen::fleet_detailed`]: clusters of 50 node groups, each with
//! labels, a rollout and a health block (10,000 node groups, about 3.6 MB). Its HCL twin is
//! written from drydock's own syntax tree, so it has the same blocks, attributes, comments
//! and layout; what HCL cannot write is spelled the nearest HCL way (`90s` → `"90s"`, `25%` →
//! `"25%"`, `2..12` → `[2, 12]`), so the HCL text is a little longer.
//!
//! Each timing is the best of N rounds (`DRYDOCK_BENCH_RUNS`, default 10), the three measured
//! in turn in every round (starting with a different one each round), so that they share the
//! machine's state. What a run returns is
//! dropped after its clock stops, for hcl-edit and drydock alike: `drydock validate` leaves
//! its model to the process's exit, and the drop is shown on a line of its own. A last,
//! untimed round counts each one's allocations. `DRYDOCK_BENCH_GROUPS` sets the fleet size;
//! `DRYDOCK_BENCH_WRITE=DIR` also writes the two files (`fleet.kcl`, `fleet.tf`) into DIR;
//! `DRYDOCK_BENCH_ONLY=load` runs drydock's load alone, N times, for a profiler.

use std::alloc::{GlobalAlloc, Layout, System};
use std::fmt::Write as _;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering::Relaxed};
use std::time::{Duration, Instant};

use drydock_config::value::format_number;
use drydock_config::{load, Inputs};
use drydock_syntax::ast::{BinaryOp, Block, Body, Expr, ExprKind, File, Item, ObjectKey, TemplatePart, UnaryOp};
use drydock_syntax::diag::FileId;
use drydock_syntax::parse_file;

/// The system allocator, counting calls while [`COUNTING`] is set (only in the last, untimed
/// round: the timed rounds pay one relaxed load per call).
struct Counting;

static COUNTING: AtomicBool = AtomicBool::new(false);
static ALLOCS: AtomicU64 = AtomicU64::new(0);
static BYTES: AtomicU64 = AtomicU64::new(0);

unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        if COUNTING.load(Relaxed) {
            ALLOCS.fetch_add(1, Relaxed);
            BYTES.fetch_add(layout.size() as u64, Relaxed);
        }
        unsafe { System.alloc(layout) }
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        unsafe { System.dealloc(ptr, layout) }
    }
    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        if COUNTING.load(Relaxed) {
            ALLOCS.fetch_add(1, Relaxed);
            BYTES.fetch_add(new_size as u64, Relaxed);
        }
        unsafe { System.realloc(ptr, layout, new_size) }
    }
}

#[global_allocator]
static GLOBAL: Counting = Counting;

/// Allocations (calls, bytes) made by `f`.
fn count_allocs<T>(f: impl FnOnce() -> T) -> (T, u64, u64) {
    ALLOCS.store(0, Relaxed);
    BYTES.store(0, Relaxed);
    COUNTING.store(true, Relaxed);
    let out = f();
    COUNTING.store(false, Relaxed);
    (out, ALLOCS.load(Relaxed), BYTES.load(Relaxed))
}

fn env_usize(name: &str, default: usize) -> usize {
    std::env::var(name).ok().and_then(|v| v.parse().ok()).unwrap_or(default)
}

/// The time `f` takes to return its result, which is dropped after the clock stops; and the
/// time the drop took.
fn timed<T>(f: impl FnOnce() -> T) -> (Duration, Duration) {
    let t = Instant::now();
    let out = f();
    let made = t.elapsed();
    let t = Instant::now();
    drop(out);
    (made, t.elapsed())
}

fn main() {
    let groups = env_usize("DRYDOCK_BENCH_GROUPS", 10_000);
    let runs = env_usize("DRYDOCK_BENCH_RUNS", 10).max(1);
    let kcl = drydock_testgen::fleet_detailed(groups, 42);
    let (file, diags) = parse_file(&kcl, FileId(0));
    assert!(diags.is_empty(), "{diags:?}");
    let hcl = to_hcl(&file.expect("the generated fleet parses"), &kcl);

    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("fleet.kcl");
    std::fs::write(&path, &kcl).unwrap();
    std::fs::write(dir.path().join("fleet.tf"), &hcl).unwrap();
    // To look at them, or to run `drydock validate` on the same fleet.
    if let Ok(keep) = std::env::var("DRYDOCK_BENCH_WRITE") {
        std::fs::write(std::path::Path::new(&keep).join("fleet.kcl"), &kcl).unwrap();
        std::fs::write(std::path::Path::new(&keep).join("fleet.tf"), &hcl).unwrap();
    }

    // Both are valid before anything is timed.
    let loaded = load(&path, &Inputs::default());
    assert!(loaded.diagnostics.is_empty(), "{:?}", loaded.diagnostics);
    assert_eq!(loaded.model.as_ref().unwrap().node_group_count(), groups);
    let body = hcl_edit::parser::parse_body(&hcl).unwrap_or_else(|e| panic!("the HCL twin does not parse: {e}"));
    assert_eq!(body.blocks().filter(|b| b.ident.as_str() == "cluster").count(), groups.div_ceil(50));
    drop((loaded, body));

    // For a profiler: only drydock's load, `runs` times.
    if std::env::var("DRYDOCK_BENCH_ONLY").as_deref() == Ok("load") {
        for _ in 0..runs {
            drop(load(&path, &Inputs::default()));
        }
        return;
    }

    let measure = |which: usize| match which {
        0 => timed(|| hcl_edit::parser::parse_body(&hcl).unwrap()),
        1 => timed(|| parse_file(&kcl, FileId(0)).0.unwrap()),
        _ => timed(|| {
            let loaded = load(&path, &Inputs::default());
            assert!(loaded.model.is_some());
            loaded
        }),
    };
    let mut best = [(Duration::MAX, Duration::MAX); 3];
    for round in 0..runs {
        // Each round starts with the next one, so that none always runs after the same
        // other's drop (the allocator's state after it changes the next one's time).
        for k in 0..3 {
            let which = (round + k) % 3;
            let (made, dropped) = measure(which);
            best[which] = (best[which].0.min(made), best[which].1.min(dropped));
        }
    }
    let (_, hcl_allocs, hcl_bytes) = count_allocs(|| hcl_edit::parser::parse_body(&hcl).unwrap());
    let (_, parse_allocs, parse_bytes) = count_allocs(|| parse_file(&kcl, FileId(0)).0.unwrap());
    let (_, load_allocs, load_bytes) = count_allocs(|| load(&path, &Inputs::default()));

    println!(
        "fleet: {groups} node groups in clusters of 50; .kcl {:.2} MB, .tf {:.2} MB; best of {runs}",
        kcl.len() as f64 / 1e6,
        hcl.len() as f64 / 1e6
    );
    println!("{:<44} {:>9} {:>9} {:>7} {:>11} {:>9}", "", "time", "drop", "ratio", "allocs", "MB alloc");
    let base = best[0].0.as_secs_f64();
    let rows = [
        ("hcl-edit parse_body (.tf text)", best[0], hcl_allocs, hcl_bytes),
        ("drydock parse_file (.kcl text)", best[1], parse_allocs, parse_bytes),
        ("drydock validate: load (read+parse+evaluate)", best[2], load_allocs, load_bytes),
    ];
    for (name, (made, dropped), allocs, bytes) in rows {
        println!(
            "{name:<44} {:>6.1} ms {:>6.1} ms {:>6.2}x {allocs:>11} {:>9.1}",
            made.as_secs_f64() * 1e3,
            dropped.as_secs_f64() * 1e3,
            made.as_secs_f64() / base,
            bytes as f64 / 1e6
        );
    }
    println!("ratio validate / hcl-edit parse: {:.2} (goal: at most 1.00)", best[2].0.as_secs_f64() / base);
}

// ------------------------------------------------------------ the HCL twin

/// The file written as HCL, with its comments, blank lines and alignment.
fn to_hcl(file: &File, src: &str) -> String {
    let mut w = Hcl { out: String::with_capacity(src.len() + src.len() / 8), src, comments: &file.comments, next: 0 };
    w.body(&file.body, 0, 0);
    w.comments_before(u32::MAX, 0);
    w.out
}

struct Hcl<'a> {
    out: String,
    src: &'a str,
    comments: &'a [drydock_syntax::ast::Comment],
    /// The first comment not yet written.
    next: usize,
}

impl Hcl<'_> {
    fn pad(&mut self, indent: usize) {
        for _ in 0..indent {
            self.out.push_str("  ");
        }
    }

    /// Writes, each on its own line, the comments that start before `at`.
    fn comments_before(&mut self, at: u32, indent: usize) {
        while let Some(c) = self.comments.get(self.next).filter(|c| c.span.start < at) {
            self.pad(indent);
            self.out.push_str(&c.text);
            self.out.push('\n');
            self.next += 1;
        }
    }

    fn body(&mut self, body: &Body, indent: usize, mut prev_end: u32) {
        for item in &body.items {
            let span = item.span();
            if prev_end > 0 && self.src[prev_end as usize..span.start as usize].contains("\n\n") {
                self.out.push('\n');
            }
            self.comments_before(span.start, indent);
            self.pad(indent);
            match item {
                Item::Attribute(a) => {
                    self.out.push_str(&a.name.name);
                    // The alignment as written (`size          = 3`).
                    let gap = &self.src[a.name.span.end as usize..a.value.span.start as usize];
                    self.out.push_str(if gap.bytes().all(|c| c == b' ' || c == b'=') { gap } else { " = " });
                    self.expr(&a.value, indent);
                    self.out.push('\n');
                }
                Item::Block(b) => self.block(b, indent),
            }
            prev_end = span.end;
        }
    }

    fn block(&mut self, b: &Block, indent: usize) {
        self.out.push_str(&b.kind.name);
        for l in &b.labels {
            let _ = write!(self.out, " {:?}", l.value);
        }
        self.out.push_str(" {\n");
        self.body(&b.body, indent + 1, 0);
        self.comments_before(b.span.end, indent + 1);
        self.pad(indent);
        self.out.push_str("}\n");
    }

    fn string_lit(&mut self, s: &str) {
        for c in s.chars() {
            match c {
                '"' => self.out.push_str("\\\""),
                '\\' => self.out.push_str("\\\\"),
                '\n' => self.out.push_str("\\n"),
                '\t' => self.out.push_str("\\t"),
                '\r' => self.out.push_str("\\r"),
                c => self.out.push(c),
            }
        }
    }

    fn template(&mut self, parts: &[TemplatePart], indent: usize) {
        self.out.push('"');
        for p in parts {
            match p {
                TemplatePart::Lit(s) => self.string_lit(&s.replace("${", "$${").replace("%{", "%%{")),
                TemplatePart::Interp(e) => {
                    self.out.push_str("${");
                    self.expr(e, indent);
                    self.out.push('}');
                }
            }
        }
        self.out.push('"');
    }

    fn list(&mut self, items: &[Expr], indent: usize) {
        self.out.push('[');
        for (i, e) in items.iter().enumerate() {
            if i > 0 {
                self.out.push_str(", ");
            }
            self.expr(e, indent);
        }
        self.out.push(']');
    }

    fn expr(&mut self, e: &Expr, indent: usize) {
        match &e.kind {
            ExprKind::Null => self.out.push_str("null"),
            ExprKind::Bool(b) => {
                let _ = write!(self.out, "{b}");
            }
            ExprKind::Number(n) => self.out.push_str(&format_number(*n)),
            // As written (`90s`, `25%`), in quotes.
            ExprKind::Duration(_) | ExprKind::Percent(_) => {
                let _ = write!(self.out, "\"{}\"", &self.src[e.span.start as usize..e.span.end as usize]);
            }
            ExprKind::Template(parts) | ExprKind::Heredoc { parts, .. } => self.template(parts, indent),
            ExprKind::List(items) => self.list(items, indent),
            ExprKind::Object(items) => {
                // On several lines if it was written so.
                let multiline = self.src[e.span.start as usize..e.span.end as usize].contains('\n');
                self.out.push('{');
                for (i, item) in items.iter().enumerate() {
                    if multiline {
                        self.out.push('\n');
                        self.pad(indent + 1);
                    } else {
                        self.out.push_str(if i == 0 { " " } else { ", " });
                    }
                    match &item.key {
                        ObjectKey::Ident(k) => self.out.push_str(&k.name),
                        ObjectKey::Expr(k) => self.expr(k, indent + 1),
                    }
                    self.out.push_str(" = ");
                    self.expr(&item.value, indent + 1);
                }
                if multiline {
                    self.out.push('\n');
                    self.pad(indent);
                    self.out.push('}');
                } else {
                    self.out.push_str(if items.is_empty() { "}" } else { " }" });
                }
            }
            ExprKind::Variable(i) => self.out.push_str(&i.name),
            ExprKind::GetAttr(base, name) => {
                self.expr(base, indent);
                self.out.push('.');
                self.out.push_str(&name.name);
            }
            ExprKind::Index(base, idx) => {
                self.expr(base, indent);
                self.out.push('[');
                self.expr(idx, indent);
                self.out.push(']');
            }
            ExprKind::Call(name, args) => {
                self.out.push_str(&name.name);
                self.out.push('(');
                for (i, a) in args.iter().enumerate() {
                    if i > 0 {
                        self.out.push_str(", ");
                    }
                    self.expr(a, indent);
                }
                self.out.push(')');
            }
            ExprKind::Unary(op, x) => {
                self.out.push(if *op == UnaryOp::Neg { '-' } else { '!' });
                self.operand(x, indent);
            }
            // HCL has no ranges: a pair of numbers.
            ExprKind::Binary(BinaryOp::Range, a, b) => self.list(&[(**a).clone(), (**b).clone()], indent),
            ExprKind::Binary(op, a, b) => {
                self.operand(a, indent);
                let _ = write!(self.out, " {} ", op.symbol());
                self.operand(b, indent);
            }
            ExprKind::Conditional(c, a, b) => {
                self.operand(c, indent);
                self.out.push_str(" ? ");
                self.operand(a, indent);
                self.out.push_str(" : ");
                self.operand(b, indent);
            }
            ExprKind::For(f) => {
                let object = f.key.is_some();
                self.out.push_str(if object { "{ for " } else { "[for " });
                if let Some(k) = &f.key_var {
                    let _ = write!(self.out, "{}, ", k.name);
                }
                let _ = write!(self.out, "{} in ", f.value_var.name);
                self.expr(&f.collection, indent);
                self.out.push_str(" : ");
                if let Some(k) = &f.key {
                    self.expr(k, indent);
                    self.out.push_str(" => ");
                }
                self.expr(&f.value, indent);
                if f.grouping {
                    self.out.push_str("...");
                }
                if let Some(c) = &f.cond {
                    self.out.push_str(" if ");
                    self.expr(c, indent);
                }
                self.out.push_str(if object { " }" } else { "]" });
            }
            ExprKind::Paren(x) => {
                self.out.push('(');
                self.expr(x, indent);
                self.out.push(')');
            }
        }
    }

    /// An operand of an operator, in parentheses when it is an operation itself (the two
    /// languages need not agree on precedence).
    fn operand(&mut self, e: &Expr, indent: usize) {
        if matches!(e.kind, ExprKind::Binary(..) | ExprKind::Conditional(..)) {
            self.out.push('(');
            self.expr(e, indent);
            self.out.push(')');
        } else {
            self.expr(e, indent);
        }
    }
}
