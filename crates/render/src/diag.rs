//! Diagnostics as miette's graphical reports: the only place that knows miette.

use std::fmt;
use std::sync::Arc;

use drydock_syntax::diag::{Diagnostic, Sources, Span};

/// A diagnostic joined with its source, ready for miette.
#[derive(Debug)]
struct Rendered {
    code: &'static str,
    message: String,
    source: Option<miette::NamedSource<Arc<str>>>,
    labels: Vec<miette::LabeledSpan>,
    help: Option<String>,
    related: Vec<Rendered>,
}

impl fmt::Display for Rendered {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)
    }
}
impl std::error::Error for Rendered {}

impl miette::Diagnostic for Rendered {
    fn code<'a>(&'a self) -> Option<Box<dyn fmt::Display + 'a>> {
        if self.code.is_empty() {
            None
        } else {
            Some(Box::new(self.code))
        }
    }
    fn help<'a>(&'a self) -> Option<Box<dyn fmt::Display + 'a>> {
        self.help.as_ref().map(|h| Box::new(h) as Box<dyn fmt::Display>)
    }
    fn source_code(&self) -> Option<&dyn miette::SourceCode> {
        self.source.as_ref().map(|s| s as &dyn miette::SourceCode)
    }
    fn labels(&self) -> Option<Box<dyn Iterator<Item = miette::LabeledSpan> + '_>> {
        if self.labels.is_empty() {
            None
        } else {
            Some(Box::new(self.labels.iter().cloned()))
        }
    }
    fn related<'a>(&'a self) -> Option<Box<dyn Iterator<Item = &'a dyn miette::Diagnostic> + 'a>> {
        if self.related.is_empty() {
            None
        } else {
            Some(Box::new(self.related.iter().map(|r| r as &dyn miette::Diagnostic)))
        }
    }
}

fn labeled(span: Span, text: &str, primary: bool) -> miette::LabeledSpan {
    let label = if text.is_empty() { None } else { Some(text.to_string()) };
    let range = (span.start as usize, span.len());
    if primary {
        miette::LabeledSpan::new_primary_with_span(label, range)
    } else {
        miette::LabeledSpan::new_with_span(label, range)
    }
}

fn to_rendered(d: &Diagnostic, sources: &Sources) -> Rendered {
    let Some(span) = d.span else {
        return Rendered {
            code: d.code,
            message: d.message.clone(),
            source: None,
            labels: vec![],
            help: d.help.clone(),
            related: vec![],
        };
    };
    let file = sources.get(span.file);
    let mut labels = vec![labeled(span, &d.label, true)];
    let mut related = vec![];
    for l in &d.secondary {
        if l.span.file == span.file {
            labels.push(labeled(l.span, &l.text, false));
        } else {
            // A place in another file is shown as a related note with its own source.
            let other = sources.get(l.span.file);
            related.push(Rendered {
                code: "",
                message: l.text.clone(),
                source: Some(miette::NamedSource::new(other.name.clone(), other.text.clone())),
                labels: vec![labeled(l.span, "", true)],
                help: None,
                related: vec![],
            });
        }
    }
    Rendered {
        code: d.code,
        message: d.message.clone(),
        source: Some(miette::NamedSource::new(file.name.clone(), file.text.clone())),
        labels,
        help: d.help.clone(),
        related,
    }
}

/// Renders diagnostics as miette's graphical reports, with or without colour.
pub fn render(diags: &[Diagnostic], sources: &Sources, color: bool) -> String {
    let theme = if color { miette::GraphicalTheme::unicode() } else { miette::GraphicalTheme::unicode_nocolor() };
    let handler = miette::GraphicalReportHandler::new_themed(theme).with_width(100).with_links(false);
    let mut out = String::new();
    for d in diags {
        let r = to_rendered(d, sources);
        if handler.render_report(&mut out, &r).is_err() {
            out.push_str(&format!("error[{}]: {}\n", d.code, d.message));
        }
        out.push('\n');
    }
    out
}
