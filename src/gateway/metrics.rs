//! Metrics in the Prometheus text format (`GET /metrics`): exchanges by direction, servizio,
//! azione, outcome and EGOV_IT code; latency histograms per phase; and, computed when scraped,
//! the outbox, the moduli by kind and state, and the days left on our and the partners'
//! certificates.

use std::collections::BTreeMap;
use std::fmt::Write;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Mutex;
use std::time::Duration;

use crate::store::{Exchange, Outcome};

/// A phase of an exchange, timed on its own.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Phase {
    /// SOAP envelope and busta reading.
    Parse,
    /// The busta's validation against the registry and the profile.
    Validate,
    /// TLS identity, authorization and the WS-Security signature.
    Verify,
    /// The service (built-in handler or backend).
    Service,
    /// Writing the exchange and waiting for the flush.
    Store,
    /// Signing our busta.
    Sign,
}

impl Phase {
    const TUTTE: [Phase; 6] = [
        Phase::Parse,
        Phase::Validate,
        Phase::Verify,
        Phase::Service,
        Phase::Store,
        Phase::Sign,
    ];
    fn nome(self) -> &'static str {
        match self {
            Phase::Parse => "parse",
            Phase::Validate => "validate",
            Phase::Verify => "verify",
            Phase::Service => "service",
            Phase::Store => "store",
            Phase::Sign => "sign",
        }
    }
}

/// Upper bounds of the latency buckets, in seconds.
const LIMITI: [f64; 14] = [
    0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 5.0,
];

#[derive(Default)]
struct Histogram {
    secchi: [AtomicU64; LIMITI.len()],
    somma_ns: AtomicU64,
    conteggio: AtomicU64,
}

impl Histogram {
    fn osserva(&self, d: Duration) {
        let s = d.as_secs_f64();
        if let Some(i) = LIMITI.iter().position(|l| s <= *l) {
            self.secchi[i].fetch_add(1, Ordering::Relaxed);
        }
        self.somma_ns
            .fetch_add(d.as_nanos().min(u64::MAX as u128) as u64, Ordering::Relaxed);
        self.conteggio.fetch_add(1, Ordering::Relaxed);
    }
}

/// Labels of an exchange counter: direction, servizio, azione, outcome, EGOV_IT code.
type Etichette = (&'static str, String, String, &'static str, String);

#[derive(Default)]
pub struct Metrics {
    scambi: Mutex<BTreeMap<Etichette, u64>>,
    fasi: [Histogram; 6],
}

impl Metrics {
    /// Counts an exchange as it is recorded.
    pub fn exchange(&self, ex: &Exchange) {
        let direction = match ex.direction {
            crate::store::Direction::In => "in",
            crate::store::Direction::Out => "out",
        };
        // A business KO is a processed exchange whose service said no.
        let outcome = match ex.outcome {
            Outcome::Ok if ex.note.as_deref().is_some_and(|n| n.starts_with("KO")) => "ko",
            o => o.as_str(),
        };
        let codice = ex
            .eccezioni
            .iter()
            .find(|e| e.is_grave())
            .map(|e| e.codice.to_string())
            .unwrap_or_default();
        let k = (
            direction,
            ex.servizio.clone().unwrap_or_default(),
            ex.azione.clone().unwrap_or_default(),
            outcome,
            codice,
        );
        *self
            .scambi
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .entry(k)
            .or_default() += 1;
    }

    pub fn phase(&self, f: Phase, d: Duration) {
        let i = Phase::TUTTE.iter().position(|x| *x == f).unwrap_or(0);
        self.fasi[i].osserva(d);
    }

    /// The counters and histograms, in the text format.
    pub fn write(&self, out: &mut String) {
        let _ = writeln!(
            out,
            "# HELP pdd_exchanges_total Exchanges recorded, by direction (in: porta applicativa, out: porta delegata), servizio, azione, outcome (ok, ko: business KO, errore_busta, fault, errore_processamento, duplicato) and EGOV_IT code.\n# TYPE pdd_exchanges_total counter"
        );
        let scambi = self.scambi.lock().unwrap_or_else(|e| e.into_inner());
        let mut duplicati = 0;
        for ((d, s, a, o, c), n) in scambi.iter() {
            let _ = writeln!(
                out,
                "pdd_exchanges_total{{direction=\"{d}\",servizio=\"{}\",azione=\"{}\",outcome=\"{o}\",codice=\"{}\"}} {n}",
                etichetta(s),
                etichetta(a),
                etichetta(c)
            );
            if *o == "duplicato" {
                duplicati += n;
            }
        }
        drop(scambi);
        let _ = writeln!(
            out,
            "# HELP pdd_duplicates_rejected_total Repeated Identificatori refused by the duplicate filter.\n# TYPE pdd_duplicates_rejected_total counter\npdd_duplicates_rejected_total {duplicati}"
        );
        let _ = writeln!(
            out,
            "# HELP pdd_phase_seconds Time spent in each phase of an exchange.\n# TYPE pdd_phase_seconds histogram"
        );
        for (f, h) in Phase::TUTTE.iter().zip(&self.fasi) {
            let mut cumul = 0;
            for (l, b) in LIMITI.iter().zip(&h.secchi) {
                cumul += b.load(Ordering::Relaxed);
                let _ = writeln!(
                    out,
                    "pdd_phase_seconds_bucket{{phase=\"{}\",le=\"{l}\"}} {cumul}",
                    f.nome()
                );
            }
            let n = h.conteggio.load(Ordering::Relaxed);
            let _ = writeln!(
                out,
                "pdd_phase_seconds_bucket{{phase=\"{0}\",le=\"+Inf\"}} {n}\npdd_phase_seconds_sum{{phase=\"{0}\"}} {1}\npdd_phase_seconds_count{{phase=\"{0}\"}} {n}",
                f.nome(),
                h.somma_ns.load(Ordering::Relaxed) as f64 / 1e9
            );
        }
    }
}

/// A label value, escaped as the text format wants.
pub fn etichetta(s: &str) -> String {
    s.replace('\\', "\\\\")
        .replace('"', "\\\"")
        .replace('\n', "\\n")
}

impl super::Shared {
    /// Everything `GET /metrics` shows: the counters, and gauges read now.
    pub async fn prometheus(&self) -> String {
        let mut out = String::with_capacity(16 * 1024);
        self.metrics.write(&mut out);
        let now_ms = self.now().timestamp_millis();
        // The outbox.
        let (mut in_attesa, mut respinti, mut piu_vecchio) = (0u64, 0u64, None::<i64>);
        for i in self.store.outbox().await.unwrap_or_default() {
            match i.stato {
                crate::store::ForwardState::Pending => {
                    in_attesa += 1;
                    let creato = i.creato.timestamp_millis();
                    piu_vecchio = Some(piu_vecchio.map_or(creato, |p: i64| p.min(creato)));
                }
                crate::store::ForwardState::Refused => respinti += 1,
            }
        }
        let eta = piu_vecchio.map_or(0.0, |c| (now_ms - c).max(0) as f64 / 1000.0);
        let _ = writeln!(
            out,
            "# HELP pdd_outbox_entries Forwards in the outbox, by state (pending: to be delivered; refused: kept for the operator).\n# TYPE pdd_outbox_entries gauge\npdd_outbox_entries{{state=\"pending\"}} {in_attesa}\npdd_outbox_entries{{state=\"refused\"}} {respinti}\n# HELP pdd_outbox_oldest_pending_seconds Age of the oldest forward not yet delivered (0: none).\n# TYPE pdd_outbox_oldest_pending_seconds gauge\npdd_outbox_oldest_pending_seconds {eta}"
        );
        // The embedded store's disk, and whether the store is in service.
        if self.config.store.engine == crate::config::Engine::Sled {
            if let Some(libero) = super::care::spazio_libero(&self.config.data) {
                let _ = writeln!(
                    out,
                    "# HELP pdd_store_free_bytes Free space of the file system holding the store (see [store] min_free_mb).\n# TYPE pdd_store_free_bytes gauge\npdd_store_free_bytes {libero}"
                );
            }
        }
        let _ = writeln!(
            out,
            "# HELP pdd_store_in_service 1 when the store takes writes; 0 while it is out of service (reopening after a failed write).\n# TYPE pdd_store_in_service gauge\npdd_store_in_service {}",
            u8::from(self.store.avviso().is_none())
        );
        // Moduli by kind and state.
        let _ = writeln!(
            out,
            "# HELP pdd_moduli Stored Candidature and Vacancies, by kind and state.\n# TYPE pdd_moduli gauge"
        );
        for tipo in [
            crate::modulo::Tipo::Candidatura,
            crate::modulo::Tipo::Vacancy,
        ] {
            let kind = tipo.as_str();
            use crate::store::StatoModulo as S;
            let stati = [S::Attivo, S::Chiuso, S::Rettificato, S::Scaduto];
            let conta: [std::sync::atomic::AtomicU64; 4] = Default::default();
            // Counted as the filter sees them, none selected: nothing is copied out of the
            // index.
            let _ = self
                .store
                .sommari(tipo, &|l: &dyn crate::store::VistaSommario| {
                    if let Some(i) = stati.iter().position(|s| *s == l.stato()) {
                        conta[i].fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                    }
                    false
                })
                .await;
            let per_stato = ["attivo", "chiuso", "rettificato", "scaduto"]
                .into_iter()
                .zip(
                    conta
                        .iter()
                        .map(|n| n.load(std::sync::atomic::Ordering::Relaxed)),
                );
            for (s, n) in per_stato {
                let _ = writeln!(out, "pdd_moduli{{kind=\"{kind}\",state=\"{s}\"}} {n}");
            }
        }
        // Certificates: ours and the partners'.
        let _ = writeln!(
            out,
            "# HELP pdd_certificate_expiry_days Days until a certificate expires (negative: expired), ours (own=\"true\") and each partner's.\n# TYPE pdd_certificate_expiry_days gauge"
        );
        let giorni = |c: &openssl::x509::X509Ref| -> Option<f64> {
            let now = openssl::asn1::Asn1Time::days_from_now(0).ok()?;
            let d = now.diff(c.not_after()).ok()?;
            Some(d.days as f64 + d.secs as f64 / 86_400.0)
        };
        if let Some(me) = self.identita() {
            if let Some(g) = giorni(&me.cert) {
                let own = self.own();
                let _ = writeln!(
                    out,
                    "pdd_certificate_expiry_days{{soggetto=\"{}/{}\",own=\"true\"}} {g:.2}",
                    etichetta(&own.tipo),
                    etichetta(&own.nome)
                );
            }
        }
        let registry = self.registry();
        for s in registry.soggetti() {
            if let Some(g) = registry.certificato(&s.parte()).and_then(|c| giorni(&c)) {
                let _ = writeln!(
                    out,
                    "pdd_certificate_expiry_days{{soggetto=\"{}/{}\",own=\"false\"}} {g:.2}",
                    etichetta(&s.tipo),
                    etichetta(&s.nome)
                );
            }
        }
        // A cluster's nodes are told apart on every series.
        if self.config.store.engine == crate::config::Engine::Postgres {
            out = con_nodo(&out, &self.nodo);
        }
        out
    }
}

/// Adds the label `node` to every sample of a Prometheus text exposition.
pub fn con_nodo(testo: &str, nodo: &str) -> String {
    let nodo = format!("node=\"{}\"", etichetta(nodo));
    let mut out = String::with_capacity(testo.len() + testo.len() / 4);
    for riga in testo.lines() {
        if riga.starts_with('#') || riga.is_empty() {
            out.push_str(riga);
        } else if let Some(i) = riga.find('{') {
            // `name{labels} value` (an empty label set takes no comma).
            let vuote = riga[i + 1..].starts_with('}');
            out.push_str(&riga[..=i]);
            out.push_str(&nodo);
            if !vuote {
                out.push(',');
            }
            out.push_str(&riga[i + 1..]);
        } else if let Some(i) = riga.find(' ') {
            out.push_str(&riga[..i]);
            out.push('{');
            out.push_str(&nodo);
            out.push('}');
            out.push_str(&riga[i..]);
        } else {
            out.push_str(riga);
        }
        out.push('\n');
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn histograms_are_cumulative_and_labels_escaped() {
        let m = Metrics::default();
        m.phase(Phase::Parse, Duration::from_micros(80));
        m.phase(Phase::Parse, Duration::from_millis(3));
        m.phase(Phase::Parse, Duration::from_secs(9));
        let mut out = String::new();
        m.write(&mut out);
        assert!(out.contains("pdd_phase_seconds_bucket{phase=\"parse\",le=\"0.0001\"} 1\n"));
        assert!(out.contains("pdd_phase_seconds_bucket{phase=\"parse\",le=\"0.005\"} 2\n"));
        assert!(out.contains("pdd_phase_seconds_bucket{phase=\"parse\",le=\"5\"} 2\n"));
        assert!(out.contains("pdd_phase_seconds_bucket{phase=\"parse\",le=\"+Inf\"} 3\n"));
        assert!(out.contains("pdd_phase_seconds_count{phase=\"parse\"} 3\n"));
        assert_eq!(etichetta("a\"b\\c\nd"), "a\\\"b\\\\c\\nd");
    }

    #[test]
    fn every_sample_gets_the_node_label() {
        let t = "# HELP x y\n# TYPE x gauge\nx 3\ny{a=\"1\"} 2\nz{} 1\n";
        assert_eq!(
            con_nodo(t, "ncn-1"),
            "# HELP x y\n# TYPE x gauge\nx{node=\"ncn-1\"} 3\ny{node=\"ncn-1\",a=\"1\"} 2\nz{node=\"ncn-1\"} 1\n"
        );
    }
}
