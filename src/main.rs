fn main() {
    let path = std::env::args().nth(1).unwrap();
    let text = std::fs::read_to_string(&path).unwrap();
    let (f, d) = drydock::syntax::parse_file(&text, drydock::diag::FileId(0));
    let mut s = drydock::diag::Sources::new();
    s.add(path.clone(), path, text.clone());
    eprint!("{}", drydock::diag::render(&d, &s, false));
    if let Some(f) = f { print!("{}", drydock::syntax::fmt::format(&f, &text)); }
}
