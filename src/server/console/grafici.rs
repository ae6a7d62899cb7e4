//! Charts as inline SVG, drawn here: stacked bars (exchanges per interval by outcome or by
//! EGOV_IT code) and lines (latency). Colours come from the stylesheet's classes.

use std::fmt::Write;

use super::pagine::esc;

/// One series: its name, its CSS class, a value per interval.
pub struct Serie {
    pub nome: String,
    pub classe: String,
    pub valori: Vec<f64>,
}

const L: f64 = 720.0;
const A: f64 = 180.0;
/// Room for the axis labels: left, bottom, top.
const SX: f64 = 44.0;
const SB: f64 = 22.0;
const ST: f64 = 8.0;

fn asse(svg: &mut String, massimo: f64, unita: &str, inizio: &str, fine: &str) {
    let h = A - SB - ST;
    for k in 0..=4 {
        let v = massimo * f64::from(k) / 4.0;
        let y = ST + h - h * f64::from(k) / 4.0;
        let _ = write!(
            svg,
            r#"<line class="griglia" x1="{SX}" y1="{y:.1}" x2="{L}" y2="{y:.1}"/><text class="etichetta" x="{:.1}" y="{:.1}" text-anchor="end">{}</text>"#,
            SX - 4.0,
            y + 4.0,
            esc(&format!("{}{unita}", arrotonda(v)))
        );
    }
    let _ = write!(
        svg,
        r#"<text class="etichetta" x="{SX}" y="{:.1}">{}</text><text class="etichetta" x="{L}" y="{:.1}" text-anchor="end">{}</text>"#,
        A - 6.0,
        esc(inizio),
        A - 6.0,
        esc(fine)
    );
}

fn arrotonda(v: f64) -> String {
    if v >= 10.0 || v.fract() == 0.0 {
        format!("{v:.0}")
    } else {
        format!("{v:.1}")
    }
}

/// A scale's top: the largest value rounded up to a number whose quarters are round.
fn scala(m: f64) -> f64 {
    if m <= 0.0 {
        return 1.0;
    }
    let p = 10f64.powf(m.log10().floor());
    for f in [1.0, 2.0, 4.0, 8.0, 10.0] {
        if m <= f * p {
            return f * p;
        }
    }
    10.0 * p
}

fn legenda(serie: &[Serie]) -> String {
    let mut out = String::from(r#"<ul class="legenda">"#);
    for s in serie {
        let totale: f64 = s.valori.iter().sum();
        let _ = write!(
            out,
            r#"<li><span class="campione {}"></span>{} ({})</li>"#,
            esc(&s.classe),
            esc(&s.nome),
            arrotonda(totale)
        );
    }
    out.push_str("</ul>");
    out
}

/// Stacked bars: one bar per interval, a segment per series.
pub fn barre(titolo: &str, serie: &[Serie], inizio: &str, fine: &str) -> String {
    let n = serie.iter().map(|s| s.valori.len()).max().unwrap_or(0);
    let somme: Vec<f64> = (0..n)
        .map(|i| {
            serie
                .iter()
                .map(|s| s.valori.get(i).copied().unwrap_or(0.0))
                .sum()
        })
        .collect();
    // Counts: at least 0..4, so that the grid's lines are whole numbers.
    let massimo = scala(somme.iter().copied().fold(4.0, f64::max));
    let mut svg = format!(
        r#"<figure class="grafico"><figcaption>{}</figcaption><svg viewBox="0 0 {L} {A}" role="img" aria-label="{}">"#,
        esc(titolo),
        esc(titolo)
    );
    asse(&mut svg, massimo, "", inizio, fine);
    let h = A - SB - ST;
    let passo = (L - SX) / n.max(1) as f64;
    for i in 0..n {
        let mut base = ST + h;
        for s in serie {
            let v = s.valori.get(i).copied().unwrap_or(0.0);
            if v <= 0.0 {
                continue;
            }
            let alto = h * v / massimo;
            base -= alto;
            let _ = write!(
                svg,
                r#"<rect class="{}" x="{:.1}" y="{base:.1}" width="{:.1}" height="{alto:.1}"><title>{}: {}</title></rect>"#,
                esc(&s.classe),
                SX + passo * i as f64 + passo * 0.1,
                (passo * 0.8).max(0.5),
                esc(&s.nome),
                arrotonda(v)
            );
        }
    }
    svg.push_str("</svg>");
    svg.push_str(&legenda(serie));
    svg.push_str("</figure>");
    svg
}

/// Lines, one per series; an interval without a value breaks the line.
pub fn linee(titolo: &str, serie: &[Serie], unita: &str, inizio: &str, fine: &str) -> String {
    let n = serie.iter().map(|s| s.valori.len()).max().unwrap_or(0);
    let massimo = scala(
        serie
            .iter()
            .flat_map(|s| s.valori.iter().copied())
            .filter(|v| v.is_finite())
            .fold(0.0, f64::max),
    );
    let mut svg = format!(
        r#"<figure class="grafico"><figcaption>{}</figcaption><svg viewBox="0 0 {L} {A}" role="img" aria-label="{}">"#,
        esc(titolo),
        esc(titolo)
    );
    asse(&mut svg, massimo, unita, inizio, fine);
    let h = A - SB - ST;
    let passo = (L - SX) / n.max(1) as f64;
    for s in serie {
        let mut tratto: Vec<String> = Vec::new();
        let chiudi = |tratto: &mut Vec<String>, svg: &mut String| {
            if tratto.len() == 1 {
                // A single point: a dot.
                let _ = write!(
                    svg,
                    r#"<circle class="{}" r="2" cx="{}""#,
                    esc(&s.classe),
                    tratto[0].replace(',', "\" cy=\"")
                );
                svg.push_str("/>");
            } else if tratto.len() > 1 {
                let _ = write!(
                    svg,
                    r#"<polyline class="{} linea" points="{}"/>"#,
                    esc(&s.classe),
                    tratto.join(" ")
                );
            }
            tratto.clear();
        };
        for (i, v) in s.valori.iter().enumerate() {
            if v.is_finite() {
                let x = SX + passo * i as f64 + passo / 2.0;
                let y = ST + h - h * v / massimo;
                tratto.push(format!("{x:.1},{y:.1}"));
            } else {
                chiudi(&mut tratto, &mut svg);
            }
        }
        chiudi(&mut tratto, &mut svg);
    }
    svg.push_str("</svg>");
    let mut leg = String::from(r#"<ul class="legenda">"#);
    for s in serie {
        let _ = write!(
            leg,
            r#"<li><span class="campione {}"></span>{}</li>"#,
            esc(&s.classe),
            esc(&s.nome)
        );
    }
    leg.push_str("</ul>");
    svg.push_str(&leg);
    svg.push_str("</figure>");
    svg
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn scales_round_up() {
        assert_eq!(scala(0.0), 1.0);
        assert_eq!(scala(3.0), 4.0);
        assert_eq!(scala(5.0), 8.0);
        assert_eq!(scala(11.0), 20.0);
        assert_eq!(scala(240.0), 400.0);
    }

    #[test]
    fn bars_stack_and_names_are_escaped() {
        let s = [
            Serie {
                nome: "ok".into(),
                classe: "esito-ok".into(),
                valori: vec![1.0, 0.0, 3.0],
            },
            Serie {
                nome: "<x>".into(),
                classe: "esito-fault".into(),
                valori: vec![1.0, 0.0, 1.0],
            },
        ];
        let svg = barre("Scambi", &s, "10:00", "10:03");
        assert_eq!(svg.matches("<rect ").count(), 4, "{svg}");
        assert!(svg.contains("&lt;x&gt; (2)"), "{svg}");
        assert!(!svg.contains("<x>"));
        let l = linee("Latenza", &s, " ms", "a", "b");
        assert_eq!(l.matches("<polyline").count(), 2, "{l}");
    }
}
