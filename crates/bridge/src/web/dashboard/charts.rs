//! Charts as inline SVG, drawn on the server: the dashboard needs no JavaScript and no external
//! asset to show them.
//!
//! Each chart is a pure function from a [`Chart`] (bucket labels and named series) to an
//! `<svg>` string with axes, tick labels, a legend, `role="img"`, a `<title>` and a `<desc>`
//! that states the figures in words (for screen readers), and a native tooltip (`<title>`) on
//! every bar or point. Values that are negative, NaN or infinite are drawn as 0, so no attribute
//! ever holds `NaN` or `inf`. Floats only place pixels; no money is drawn here.

use std::fmt::Write;

/// Colours that stay distinct for the common colour-vision deficiencies (Okabe and Ito).
pub mod palette {
    pub const GREEN: &str = "#009e73";
    pub const VERMILLION: &str = "#d55e00";
    pub const ORANGE: &str = "#e69f00";
    pub const BLUE: &str = "#0072b2";
    pub const SKY: &str = "#56b4e9";
    pub const PURPLE: &str = "#cc79a7";
}

const WIDTH: f64 = 640.0;
const HEIGHT: f64 = 260.0;
const LEFT: f64 = 52.0;
const RIGHT: f64 = 16.0;
const TOP: f64 = 34.0;
const BOTTOM: f64 = 58.0;
/// X labels shown at most; the others are thinned out so they never overlap.
const MAX_X_LABELS: usize = 12;
const TICKS: f64 = 4.0;

/// One named row of values, one per bucket.
#[derive(Clone, Debug, PartialEq)]
pub struct Series {
    pub name: String,
    /// A CSS colour, e.g. from [`palette`].
    pub color: String,
    pub values: Vec<f64>,
}

impl Series {
    pub fn new(name: &str, color: &str, values: impl IntoIterator<Item = f64>) -> Series {
        Series {
            name: name.to_owned(),
            color: color.to_owned(),
            values: values.into_iter().collect(),
        }
    }
}

/// What to draw.
#[derive(Clone, Debug, PartialEq)]
pub struct Chart {
    /// Prefix of the element ids (`aria-labelledby`), unique within the page.
    pub id: String,
    pub title: String,
    /// What the y axis counts ("documents", "calls").
    pub unit: String,
    /// One per bucket, left to right.
    pub labels: Vec<String>,
    pub series: Vec<Series>,
}

/// Bars, one per bucket, each stacking the series in order from the axis up.
pub fn stacked_bars(chart: &Chart) -> String {
    let n = chart.labels.len();
    let totals: Vec<f64> = (0..n)
        .map(|i| chart.series.iter().map(|s| value(s, i)).sum())
        .collect();
    let max = totals.iter().copied().fold(0.0, f64::max);
    let mut svg = open(chart, max);
    if max <= 0.0 {
        return close_empty(svg);
    }
    let scale = Scale::new(max);
    axes(&mut svg, chart, &scale);
    let slot = plot_width() / n as f64;
    let bar = (slot * 0.7).max(1.0);
    for i in 0..n {
        let x = LEFT + slot * i as f64 + (slot - bar) / 2.0;
        let mut base = 0.0;
        for (k, s) in chart.series.iter().enumerate() {
            let v = value(s, i);
            if v <= 0.0 {
                continue;
            }
            let (y_top, y_base) = (scale.y(base + v), scale.y(base));
            let _ = write!(
                svg,
                r#"<rect class="bar" data-series="{k}" data-value="{}" x="{}" y="{}" width="{}" height="{}" fill="{}"><title>{}: {} {}</title></rect>"#,
                num(v),
                px(x),
                px(y_top),
                px(bar),
                px(y_base - y_top),
                esc(&s.color),
                esc(&chart.labels[i]),
                num(v),
                esc(&s.name),
            );
            base += v;
        }
    }
    legend(&mut svg, chart, "bar");
    close(svg)
}

/// One line per series over the buckets, with a marker on each point.
pub fn lines(chart: &Chart) -> String {
    let n = chart.labels.len();
    let max = chart
        .series
        .iter()
        .flat_map(|s| (0..n).map(move |i| value(s, i)))
        .fold(0.0, f64::max);
    let mut svg = open(chart, max);
    if max <= 0.0 {
        return close_empty(svg);
    }
    let scale = Scale::new(max);
    axes(&mut svg, chart, &scale);
    let slot = plot_width() / n as f64;
    for (k, s) in chart.series.iter().enumerate() {
        let points: Vec<(f64, f64, f64)> = (0..n)
            .map(|i| {
                let v = value(s, i);
                (LEFT + slot * (i as f64 + 0.5), scale.y(v), v)
            })
            .collect();
        let path: Vec<String> = points
            .iter()
            .map(|(x, y, _)| format!("{},{}", px(*x), px(*y)))
            .collect();
        let _ = write!(
            svg,
            r#"<polyline class="line" data-series="{k}" fill="none" stroke="{}" stroke-width="2" points="{}"/>"#,
            esc(&s.color),
            path.join(" ")
        );
        for (i, (x, y, v)) in points.iter().enumerate() {
            let _ = write!(
                svg,
                r#"<circle class="point" data-series="{k}" data-value="{}" cx="{}" cy="{}" r="3" fill="{}"><title>{}: {} {}</title></circle>"#,
                num(*v),
                px(*x),
                px(*y),
                esc(&s.color),
                esc(&chart.labels[i]),
                num(*v),
                esc(&s.name),
            );
        }
    }
    legend(&mut svg, chart, "line");
    close(svg)
}

/// Where values land on the y axis: 0 at the bottom, a round number at the top.
struct Scale {
    top: f64,
    step: f64,
}

impl Scale {
    fn new(max: f64) -> Scale {
        let step = nice_step(max / TICKS);
        let top = (max / step).ceil() * step;
        Scale {
            top: if top > 0.0 { top } else { 1.0 },
            step,
        }
    }

    fn y(&self, v: f64) -> f64 {
        HEIGHT - BOTTOM - v / self.top * plot_height()
    }
}

/// 1, 2 or 5 times a power of ten, at least `raw`; at least 1 because the charts count things.
fn nice_step(raw: f64) -> f64 {
    if !raw.is_finite() || raw <= 1.0 {
        return 1.0;
    }
    let magnitude = 10f64.powf(raw.log10().floor());
    let norm = raw / magnitude;
    let nice = if norm <= 1.0 {
        1.0
    } else if norm <= 2.0 {
        2.0
    } else if norm <= 5.0 {
        5.0
    } else {
        10.0
    };
    nice * magnitude
}

fn plot_width() -> f64 {
    WIDTH - LEFT - RIGHT
}

fn plot_height() -> f64 {
    HEIGHT - TOP - BOTTOM
}

/// Values above this are drawn at it, so sums of a few stay finite.
const MAX_VALUE: f64 = 1e15;

/// The value of bucket `i`, as drawn: missing, negative and non-finite values are 0.
fn value(s: &Series, i: usize) -> f64 {
    match s.values.get(i) {
        Some(v) if v.is_finite() && *v > 0.0 => v.min(MAX_VALUE),
        _ => 0.0,
    }
}

fn open(chart: &Chart, max: f64) -> String {
    let id = esc(&chart.id);
    let mut svg = String::with_capacity(4096);
    let _ = write!(
        svg,
        r##"<svg xmlns="http://www.w3.org/2000/svg" class="chart" viewBox="0 0 {w} {h}" width="{w}" height="{h}" role="img" aria-labelledby="{id}-title {id}-desc" font-family="system-ui, sans-serif" font-size="11"><title id="{id}-title">{title}</title><desc id="{id}-desc">{desc}</desc><text x="{LEFT}" y="18" font-size="13" font-weight="600" fill="#222">{title}</text>"##,
        w = WIDTH,
        h = HEIGHT,
        title = esc(&chart.title),
        desc = esc(&describe(chart, max)),
    );
    svg
}

/// The figures in words, for the `<desc>`.
fn describe(chart: &Chart, max: f64) -> String {
    if max <= 0.0 {
        return format!("No {} in this period.", chart.unit);
    }
    let n = chart.labels.len();
    let parts: Vec<String> = chart
        .series
        .iter()
        .map(|s| {
            let total: f64 = (0..n).map(|i| value(s, i)).sum();
            format!("{} {}", num(total), s.name)
        })
        .collect();
    match (chart.labels.first(), chart.labels.last()) {
        (Some(first), Some(last)) => format!(
            "{} from {first} to {last}: {}.",
            capitalise(&chart.unit),
            parts.join(", ")
        ),
        _ => String::new(),
    }
}

fn axes(svg: &mut String, chart: &Chart, scale: &Scale) {
    let (x0, x1, y0) = (LEFT, WIDTH - RIGHT, HEIGHT - BOTTOM);
    let mut tick = 0.0;
    while tick <= scale.top + scale.step / 2.0 {
        let y = scale.y(tick);
        let _ = write!(
            svg,
            r##"<line class="grid" x1="{}" y1="{y}" x2="{}" y2="{y}" stroke="#e3e3e3"/><text x="{}" y="{}" text-anchor="end" fill="#555">{}</text>"##,
            px(x0),
            px(x1),
            px(x0 - 6.0),
            px(y + 4.0),
            num(tick),
            y = px(y),
        );
        tick += scale.step;
    }
    let _ = write!(
        svg,
        r##"<line class="axis" x1="{x0}" y1="{top}" x2="{x0}" y2="{y0}" stroke="#333"/><line class="axis" x1="{x0}" y1="{y0}" x2="{x1}" y2="{y0}" stroke="#333"/><text x="12" y="{mid}" transform="rotate(-90 12 {mid})" text-anchor="middle" fill="#555">{unit}</text>"##,
        x0 = px(x0),
        x1 = px(x1),
        y0 = px(y0),
        top = px(TOP),
        mid = px(TOP + plot_height() / 2.0),
        unit = esc(&chart.unit),
    );
    let n = chart.labels.len();
    let every = n.div_ceil(MAX_X_LABELS).max(1);
    let slot = plot_width() / n as f64;
    for (i, label) in chart.labels.iter().enumerate() {
        if i % every != 0 {
            continue;
        }
        let _ = write!(
            svg,
            r##"<text class="xlabel" x="{}" y="{}" text-anchor="middle" fill="#555">{}</text>"##,
            px(LEFT + slot * (i as f64 + 0.5)),
            px(y0 + 15.0),
            esc(label),
        );
    }
}

fn legend(svg: &mut String, chart: &Chart, kind: &str) {
    let y = HEIGHT - 14.0;
    let mut x = LEFT;
    for s in &chart.series {
        let swatch = match kind {
            "line" => format!(
                r#"<line x1="{}" y1="{}" x2="{}" y2="{}" stroke="{}" stroke-width="3"/>"#,
                px(x),
                px(y - 4.0),
                px(x + 12.0),
                px(y - 4.0),
                esc(&s.color)
            ),
            _ => format!(
                r#"<rect x="{}" y="{}" width="12" height="10" fill="{}"/>"#,
                px(x),
                px(y - 9.0),
                esc(&s.color)
            ),
        };
        let _ = write!(
            svg,
            r##"<g class="legend">{swatch}<text x="{}" y="{}" fill="#222">{}</text></g>"##,
            px(x + 16.0),
            px(y),
            esc(&s.name)
        );
        // Roughly the text's width at 11px: the legend needs no exact metrics.
        x += 16.0 + 6.5 * s.name.chars().count() as f64 + 18.0;
    }
}

fn close(mut svg: String) -> String {
    svg.push_str("</svg>");
    svg
}

/// The frame of a chart with nothing to show, and says so.
fn close_empty(mut svg: String) -> String {
    let _ = write!(
        svg,
        r##"<rect class="empty" x="{}" y="{}" width="{}" height="{}" fill="#fafafa" stroke="#ddd"/><text x="{}" y="{}" text-anchor="middle" fill="#777" font-size="13">No data in this period</text>"##,
        px(LEFT),
        px(TOP),
        px(plot_width()),
        px(plot_height()),
        px(LEFT + plot_width() / 2.0),
        px(TOP + plot_height() / 2.0),
    );
    close(svg)
}

/// A pixel coordinate. Every caller passes finite values; the guard keeps a future mistake from
/// writing `NaN` into the page.
fn px(v: f64) -> String {
    if v.is_finite() {
        format!("{v:.1}")
    } else {
        "0".to_owned()
    }
}

/// A value as people read it: `12`, `2.5`.
fn num(v: f64) -> String {
    if !v.is_finite() {
        return "0".to_owned();
    }
    if (v - v.round()).abs() < 1e-9 {
        format!("{}", v.round() as i64)
    } else {
        let s = format!("{v:.2}");
        s.trim_end_matches('0').trim_end_matches('.').to_owned()
    }
}

fn capitalise(s: &str) -> String {
    let mut chars = s.chars();
    match chars.next() {
        Some(c) => c.to_uppercase().chain(chars).collect(),
        None => String::new(),
    }
}

/// Escapes text for XML content and attribute values.
pub fn esc(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn chart(values: &[&[f64]]) -> Chart {
        let n = values.first().map_or(0, |v| v.len());
        Chart {
            id: "t".into(),
            title: "Documents <per> hour".into(),
            unit: "documents".into(),
            labels: (0..n).map(|i| format!("{i:02}:00")).collect(),
            series: values
                .iter()
                .enumerate()
                .map(|(k, v)| Series::new(&format!("s{k}"), palette::BLUE, v.iter().copied()))
                .collect(),
        }
    }

    /// Checks that every tag is closed in order, that the root is one `<svg>`, and that text
    /// holds no raw `<` or unescaped `&`: well-formed enough for a browser's XML parser.
    fn assert_well_formed(svg: &str) {
        let mut stack: Vec<String> = Vec::new();
        let mut rest = svg;
        let mut roots = 0;
        while let Some(start) = rest.find('<') {
            let text = &rest[..start];
            assert!(!text.contains('>'), "stray '>' in text {text:?}");
            assert_entities(text);
            let end = rest[start..].find('>').expect("tag closes") + start;
            let tag = &rest[start + 1..end];
            assert!(!tag.contains('<'), "'<' inside tag {tag:?}");
            if let Some(name) = tag.strip_prefix('/') {
                let open = stack.pop().expect("closing tag has an opening tag");
                assert_eq!(open, name.trim(), "tags close in order");
            } else {
                assert_eq!(tag.matches('"').count() % 2, 0, "quotes balance in {tag:?}");
                assert_entities(tag);
                let name: String = tag
                    .chars()
                    .take_while(|c| !c.is_whitespace() && *c != '/')
                    .collect();
                if stack.is_empty() {
                    roots += 1;
                    assert_eq!(name, "svg", "root element");
                }
                if !tag.ends_with('/') {
                    stack.push(name);
                }
            }
            rest = &rest[end + 1..];
        }
        assert!(stack.is_empty(), "unclosed tags {stack:?}");
        assert_eq!(roots, 1);
        assert!(rest.trim().is_empty());
    }

    fn assert_entities(s: &str) {
        for (i, _) in s.match_indices('&') {
            let entity: String = s[i..].chars().take_while(|c| *c != ';').collect();
            assert!(
                ["&amp", "&lt", "&gt", "&quot", "&#39"].contains(&entity.as_str()),
                "bad entity {entity:?}"
            );
        }
    }

    fn attr(element: &str, name: &str) -> f64 {
        let needle = format!(" {name}=\"");
        let start = element.find(&needle).expect("attribute present") + needle.len();
        let end = element[start..].find('"').expect("attribute closes") + start;
        element[start..end].parse().expect("a number")
    }

    fn elements<'a>(svg: &'a str, prefix: &str) -> Vec<&'a str> {
        svg.match_indices(prefix)
            .map(|(i, _)| {
                let end = svg[i..].find('>').expect("tag closes") + i;
                &svg[i..end]
            })
            .collect()
    }

    #[test]
    fn bars_are_well_formed_accessible_and_escaped() {
        let svg = stacked_bars(&chart(&[&[3.0, 0.0, 5.0], &[1.0, 2.0, 0.0]]));
        assert_well_formed(&svg);
        assert!(svg.starts_with("<svg "), "{svg}");
        assert!(svg.contains(r#"role="img""#));
        assert!(svg.contains(r#"<title id="t-title">Documents &lt;per&gt; hour</title>"#));
        assert!(
            svg.contains("Documents from 00:00 to 02:00: 8 s0, 3 s1."),
            "{svg}"
        );
        assert_eq!(
            elements(&svg, "<rect class=\"bar\"").len(),
            4,
            "zero values draw nothing"
        );
        assert_eq!(elements(&svg, "<g class=\"legend\"").len(), 2);
    }

    #[test]
    fn bar_heights_are_proportional_and_stack() {
        let svg = stacked_bars(&chart(&[&[1.0, 2.0, 4.0, 7.0]]));
        let bars = elements(&svg, "<rect class=\"bar\"");
        assert_eq!(bars.len(), 4);
        let unit = attr(bars[0], "height");
        assert!(unit > 0.0);
        for bar in &bars {
            let ratio = attr(bar, "height") / attr(bar, "data-value");
            assert!((ratio - unit).abs() < 0.2, "{bar}: {ratio} vs {unit}");
            // Every bar stands on the x axis.
            let bottom = attr(bar, "y") + attr(bar, "height");
            assert!((bottom - (HEIGHT - BOTTOM)).abs() < 0.2, "{bar}");
        }
        // The tallest bar fits inside the plot.
        assert!(attr(bars[3], "y") >= TOP - 0.1);

        let stacked = stacked_bars(&chart(&[&[2.0], &[6.0]]));
        let parts = elements(&stacked, "<rect class=\"bar\"");
        let (lower, upper) = (parts[0], parts[1]);
        assert!((attr(upper, "height") - 3.0 * attr(lower, "height")).abs() < 0.3);
        assert!((attr(upper, "y") + attr(upper, "height") - attr(lower, "y")).abs() < 0.2);
    }

    #[test]
    fn empty_series_give_an_empty_state_chart() {
        for svg in [
            stacked_bars(&chart(&[])),
            stacked_bars(&chart(&[&[0.0, 0.0]])),
            lines(&chart(&[&[]])),
            lines(&chart(&[&[0.0; 24]])),
        ] {
            assert_well_formed(&svg);
            assert!(svg.contains("No data in this period"), "{svg}");
            assert!(svg.contains("<desc id=\"t-desc\">No documents in this period.</desc>"));
            assert!(!svg.contains("class=\"bar\"") && !svg.contains("class=\"point\""));
        }
    }

    #[test]
    fn bad_numbers_never_reach_an_attribute() {
        let weird = [
            f64::NAN,
            f64::INFINITY,
            -3.0,
            f64::NEG_INFINITY,
            2.0,
            1e-300,
        ];
        for svg in [
            stacked_bars(&chart(&[&weird, &weird])),
            lines(&chart(&[&weird])),
            stacked_bars(&chart(&[&[f64::NAN]])),
            lines(&chart(&[&[f64::MAX, f64::MAX]])),
        ] {
            assert_well_formed(&svg);
            let lower = svg.to_lowercase();
            assert!(!lower.contains("nan") && !lower.contains("inf"), "{svg}");
        }
    }

    #[test]
    fn lines_put_one_point_per_bucket_at_its_height() {
        let svg = lines(&chart(&[&[0.0, 5.0, 10.0], &[1.0, 1.0, 1.0]]));
        assert_well_formed(&svg);
        let points = elements(&svg, "<circle class=\"point\"");
        assert_eq!(points.len(), 6);
        assert_eq!(elements(&svg, "<polyline").len(), 2);
        let base = HEIGHT - BOTTOM;
        let (zero, five, ten) = (
            attr(points[0], "cy"),
            attr(points[1], "cy"),
            attr(points[2], "cy"),
        );
        assert!((zero - base).abs() < 0.1);
        assert!(((base - ten) - 2.0 * (base - five)).abs() < 0.3);
    }

    #[test]
    fn many_buckets_thin_their_labels_and_ticks_are_round() {
        let values: Vec<f64> = (0..48).map(f64::from).collect();
        let svg = stacked_bars(&chart(&[&values]));
        assert!(elements(&svg, "<text class=\"xlabel\"").len() <= MAX_X_LABELS);
        assert_eq!(nice_step(0.3), 1.0);
        assert_eq!(nice_step(3.0), 5.0);
        assert_eq!(nice_step(11.75), 20.0);
        assert_eq!(nice_step(450.0), 500.0);
        assert_eq!(num(2.5), "2.5");
        assert_eq!(num(40.0), "40");
    }
}
