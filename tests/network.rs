//! A ClicLavoro network on loopback, as separate processes: the NCN, two regional nodes
//! (EMILIA, LAZIO) and INPS, each a `pdd serve` with mutual TLS and signed buste. The test
//! plays their local systems (porta delegata) and their users (read API), and checks the rules
//! of the document: dissemination by ambito, vacancies both ways, percettori routed by
//! domicile, rettifica and chiusura reaching everyone, contacts through the intermediary,
//! a regional node down while the NCN forwards, and expiry with a moved clock.

mod common;

use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use common::{
    eventually_blocking, free_port, http, pdd_cli, KeyPair, On, PddProcess, Pki, TempDir, CT_XML,
};
use pdd::modulo::model::candidatura::{Candidatura, EsperienzeLavorative};
use pdd::modulo::model::messaggio::Interlocutore;
use pdd::modulo::{ws, Modulo};
use serde_json::Value;

fn get_json(addr: SocketAddr, path: &str, headers: &[(&str, &str)]) -> (u16, Value) {
    let (s, b) = http(addr, "GET", path, headers, b"").unwrap();
    (
        s,
        serde_json::from_str(&b).unwrap_or_else(|e| panic!("{path}: {e}: {b}")),
    )
}

/// One node: its configuration, its process, its addresses.
struct Nodo {
    nome: &'static str,
    config: PathBuf,
    porta: u16,
    locale: SocketAddr,
    kp: KeyPair,
    proc: Option<PddProcess>,
}

impl Nodo {
    fn start(&mut self) {
        let p = PddProcess::serve_config(&self.config);
        assert!(p.addr.ends_with(&format!(":{}", self.porta)), "{}", p.addr);
        self.proc = Some(p);
    }

    fn stop(&mut self) {
        if let Some(p) = self.proc.take() {
            let (status, log) = p.terminate();
            assert!(status.success(), "{}: {log}", self.nome);
        }
    }

    fn url(&self) -> String {
        format!("https://127.0.0.1:{}/pdd/PA", self.porta)
    }

    /// The local system posts a modulo to our porta delegata.
    fn invia(&self, azione: &str, modulo: &str) -> (u16, String) {
        self.invia_a(azione, modulo, &[])
    }

    /// The same with extra headers (`X-PDD-Destinatario`).
    fn invia_a(&self, azione: &str, modulo: &str, headers: &[(&str, &str)]) -> (u16, String) {
        let op = ws::operazione(azione).unwrap();
        let servizio = if azione == "InvioPercettore" {
            "ClicLavoroPercettori"
        } else {
            "ClicLavoro"
        };
        let msg = pdd::soap::envelope(&[], &ws::richiesta(op, modulo));
        let mut h = vec![CT_XML];
        h.extend_from_slice(headers);
        http(
            self.locale,
            "POST",
            &format!("/pdd/PD/{servizio}/{azione}"),
            &h,
            msg.as_bytes(),
        )
        .unwrap()
    }

    fn api(&self, kind: &str, headers: &[(&str, &str)]) -> Value {
        let (s, v) = get_json(self.locale, &format!("/api/{kind}?per_pagina=100"), headers);
        assert_eq!(s, 200, "{v}");
        v
    }

    fn codici(&self, kind: &str) -> Vec<String> {
        self.api(kind, &[])["risultati"]
            .as_array()
            .unwrap()
            .iter()
            .map(|r| r["codice"].as_str().unwrap().to_string())
            .collect()
    }

    /// The raw request of the exchange that delivered modulo `codice` here.
    fn richiesta_di(&self, codice: &str) -> String {
        let (_, recent) = get_json(self.locale, "/admin/exchanges?limit=100", &[]);
        let seq = recent
            .as_array()
            .unwrap()
            .iter()
            .find(|e| e["note"].as_str().is_some_and(|n| n.contains(codice)))
            .unwrap_or_else(|| panic!("{}: no exchange of {codice}", self.nome))["seq"]
            .as_u64()
            .unwrap();
        let (_, ex) = get_json(self.locale, &format!("/admin/exchanges/{seq}"), &[]);
        ex["request"].as_str().unwrap().to_string()
    }

    fn outbox(&self) -> Vec<Value> {
        let (s, v) = get_json(self.locale, "/admin/outbox", &[]);
        assert_eq!(s, 200);
        v.as_array().unwrap().clone()
    }

    fn cli(&self, args: &[&str]) -> (i32, String, String) {
        pdd_cli(On::Config(&self.config), args)
    }
}

fn esito_ok(answer: &(u16, String)) -> bool {
    answer.0 == 200
        && answer
            .1
            .contains("<types:Tipo_Risposta>OK</types:Tipo_Risposta>")
}

/// A Rev.038 Candidatura from the sample, with its own 25-digit code, ambito and dates of today.
fn cv(codice: &str, ambito: &str) -> Candidatura {
    common::cv_di_oggi(codice, ambito)
}

fn scrivi(c: &Candidatura) -> String {
    Modulo::Candidatura(c.clone()).scrivi()
}

fn vacancy(codice: &str) -> String {
    vacancy_da("vacancy-rev038.xml", codice)
}

/// A vacancy from the example `file`, with its own code, published today for 20 days.
fn vacancy_da(file: &str, codice: &str) -> String {
    let xml = common::example(&format!("moduli/{file}"));
    let root = pdd::xml::parse_document(xml.as_bytes(), pdd::xml::Limits::default()).unwrap();
    let Some(Modulo::Vacancy(mut v)) = Modulo::leggi(&root) else {
        panic!()
    };
    v.dati_sistema.codiceofferta = codice.into();
    let ora = chrono::Local::now();
    v.richiesta.durata_richiesta.datapubblicazione =
        ora.format("%Y-%m-%dT%H:%M:%S").to_string().into();
    v.richiesta.durata_richiesta.datascadenza = Some(
        (ora.date_naive() + chrono::Days::new(20))
            .to_string()
            .into(),
    );
    Modulo::Vacancy(v).scrivi()
}

fn config(
    dir: &Path,
    nome: &str,
    soggetto: &str,
    role: &str,
    me: &Nodo,
    partners: &[&Nodo],
    extra: &str,
) -> String {
    let mut c = format!(
        "listen = \"127.0.0.1:{}\"\nlocal_listen = \"{}\"\ndata = \"{}\"\nrole = \"{role}\"\n{extra}\n\
         [soggetto]\nnome = \"{soggetto}\"\n\n[tls]\ncert = \"{}\"\nkey = \"{}\"\n\n\
         [wssec]\nverifica = \"required\"\n\n[outbox]\nretry_min_secs = 1\nretry_max_secs = 1\n",
        me.porta,
        me.locale,
        dir.join(format!("{nome}-data")).display(),
        me.kp.cert.display(),
        me.kp.key.display(),
    );
    for p in partners {
        let soggetto = match p.nome {
            "ncn" => "MinisteroLavoro",
            "inps" => "INPS",
            n => {
                if n == "emilia" {
                    "EMILIA"
                } else {
                    "LAZIO"
                }
            }
        };
        c.push_str(&format!(
            "\n[[registry.soggetti]]\nnome = \"{soggetto}\"\ncert = \"{}\"\n",
            p.kp.cert.display()
        ));
        if p.nome != "inps" {
            c.push_str(&format!("url = \"{}\"\n", p.url()));
        }
    }
    c
}

#[test]
fn cliclavoro_network_end_to_end() {
    let dir = TempDir::new("network");
    let api_lazio = SocketAddr::from(([127, 0, 0, 1], free_port()));
    let pki = Pki::new();
    let mut nodi: Vec<Nodo> = [
        ("ncn", "MinisteroLavoro"),
        ("emilia", "EMILIA"),
        ("lazio", "LAZIO"),
        ("inps", "INPS"),
    ]
    .iter()
    .map(|(n, cn)| Nodo {
        nome: n,
        config: dir.0.join(format!("{n}.toml")),
        porta: free_port(),
        locale: SocketAddr::from(([127, 0, 0, 1], free_port())),
        kp: pki.make(n, cn, false, 30, -1),
        proc: None,
    })
    .collect();
    {
        let [ncn, emilia, lazio, inps] = &nodi[..] else {
            panic!()
        };
        let files = [
            (
                ncn,
                config(
                    &dir.0,
                    "ncn",
                    "MinisteroLavoro",
                    "ncn",
                    ncn,
                    &[emilia, lazio, inps],
                    "",
                ),
            ),
            (
                emilia,
                config(&dir.0, "emilia", "EMILIA", "nr", emilia, &[ncn], ""),
            ),
            (
                lazio,
                config(
                    &dir.0,
                    "lazio",
                    "LAZIO",
                    "nr",
                    lazio,
                    &[ncn],
                    &format!("api_listen = \"{api_lazio}\""),
                ),
            ),
            (
                inps,
                config(&dir.0, "inps", "INPS", "none", inps, &[ncn], ""),
            ),
        ];
        for (n, text) in files {
            std::fs::write(&n.config, text).unwrap();
        }
    }
    // LAZIO's clock is moved for the expiry rules.
    std::env::set_var("PDD_TEST_CLOCK", "1");
    for n in nodi.iter_mut() {
        n.start();
    }
    let [ncn, emilia, lazio, inps] = &mut nodi[..] else {
        panic!()
    };

    // 1. A national CV from EMILIA reaches LAZIO, anonymised; EMILIA and the NCN publish it too.
    let c1 = "2026112700000000000000001";
    let a = emilia.invia("InvioCandidatura", &scrivi(&cv(c1, "02")));
    assert!(esito_ok(&a), "{a:?}");
    assert!(a.1.contains("inoltrata a SPC/LAZIO"), "{}", a.1);
    eventually_blocking("LAZIO publishes the national CV", || {
        lazio.codici("candidature").contains(&c1.to_string())
    });
    let pub_lazio = lazio.api("candidature", &[]).to_string();
    for personale in [
        "MRNTMS91C14Z133A",
        "MARINELLI",
        "TOMMASO",
        "tommaso.marinelli@example.it",
        "3391122334",
        "Borgovico",
    ] {
        assert!(
            !pub_lazio.contains(personale),
            "{personale} published: {pub_lazio}"
        );
    }
    assert!(!pub_lazio.contains("\"contatto\""));
    assert!(
        emilia.codici("candidature").contains(&c1.to_string()),
        "EMILIA keeps its own CV"
    );
    assert!(ncn.codici("candidature").contains(&c1.to_string()));

    // 2. A regional CV stays with EMILIA and the NCN.
    let c2 = "2026112700000000000000002";
    let a = emilia.invia("InvioCandidatura", &scrivi(&cv(c2, "01")));
    assert!(
        esito_ok(&a) && a.1.contains("ambito regionale: non inoltrata"),
        "{a:?}"
    );
    // 3. A European CV from LAZIO: EMILIA gets it, and the NCN queues a Europass CV for EURES.
    let c3 = "2026112700000000000000003";
    let a = lazio.invia("InvioCandidatura", &scrivi(&cv(c3, "03")));
    assert!(esito_ok(&a) && a.1.contains("EURES"), "{a:?}");
    eventually_blocking("EMILIA publishes the European CV", || {
        emilia.codici("candidature").contains(&c3.to_string())
    });
    eventually_blocking("the NCN's outbox is empty", || ncn.outbox().is_empty());
    assert!(
        !lazio.codici("candidature").contains(&c2.to_string()),
        "a regional CV was forwarded"
    );
    // The NCN keeps it (for its region) but does not publish it nationally.
    assert!(!ncn.codici("candidature").contains(&c2.to_string()));
    assert!(emilia.codici("candidature").contains(&c2.to_string()));
    let export = dir.0.join("eures");
    let (code, _, err) = ncn.cli(&["eures", "export", export.to_str().unwrap()]);
    assert_eq!(code, 0, "{err}");
    let files: Vec<_> = std::fs::read_dir(&export)
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    assert_eq!(files.len(), 1, "{files:?}");
    let europass = std::fs::read_to_string(&files[0]).unwrap();
    assert!(
        europass.contains("SkillsPassport") && europass.contains("MARINELLI"),
        "{europass}"
    );
    assert!(files[0].to_string_lossy().contains(c3));

    // 4. A vacancy from LAZIO circulates to EMILIA.
    let v1 = "2026112710000000000000001";
    let a = lazio.invia("InvioVacancy", &vacancy(v1));
    assert!(esito_ok(&a), "{a:?}");
    // The national portal publishes a vacancy through the NCN's own porta delegata: it reaches
    // every region.
    let v0 = "2026112710000000000000000";
    let a = ncn.invia_a(
        "InvioVacancy",
        &vacancy(v0),
        &[("X-PDD-Destinatario", "SPC/MinisteroLavoro")],
    );
    assert!(esito_ok(&a), "{a:?}");
    assert!(a.1.contains("inoltrata a SPC/EMILIA, SPC/LAZIO"), "{}", a.1);
    eventually_blocking("both regions publish the national portal's vacancy", || {
        emilia.codici("vacancies").contains(&v0.to_string())
            && lazio.codici("vacancies").contains(&v0.to_string())
    });
    eventually_blocking("EMILIA publishes LAZIO's vacancy", || {
        emilia.codici("vacancies").contains(&v1.to_string())
    });
    // A Rev.064 vacancy (with its nulla osta) is accepted and circulates as such.
    let v64 = "2026112710000000000000064";
    let a = emilia.invia("InvioVacancy", &vacancy_da("vacancy-rev064.xml", v64));
    assert!(esito_ok(&a), "{a:?}");
    eventually_blocking("LAZIO publishes the Rev.064 vacancy", || {
        lazio.codici("vacancies").contains(&v64.to_string())
    });
    let pubblicata = lazio.api("vacancies", &[])["risultati"]
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["codice"] == v64)
        .cloned()
        .unwrap();
    assert_eq!(pubblicata["nulla_osta"], true, "{pubblicata}");
    // A regional CV from the national portal belongs to the region of the worker's domicile
    // (Roma: LAZIO): it goes there only, and the NCN does not publish it nationally.
    let c7 = "2026112700000000000000007";
    let mut c = cv(c7, "01");
    c.lavoratore.domicilio.idcomune = "H501".into();
    c.lavoratore.domicilio.cap = Some("00100".into());
    let a = ncn.invia_a(
        "InvioCandidatura",
        &scrivi(&c),
        &[("X-PDD-Destinatario", "SPC/MinisteroLavoro")],
    );
    assert!(esito_ok(&a), "{a:?}");
    assert!(
        a.1.contains("ambito regionale con domicilio in H501: inoltrata a SPC/LAZIO"),
        "{}",
        a.1
    );
    eventually_blocking("LAZIO publishes the portal's regional CV", || {
        lazio.codici("candidature").contains(&c7.to_string())
    });
    assert!(!ncn.codici("candidature").contains(&c7.to_string()));
    assert!(!emilia.codici("candidature").contains(&c7.to_string()));

    // 5. A percettore from INPS: flagged, its qualifica filled from the last employment record,
    //    routed to the region of the domicile (Roma: LAZIO), not to EMILIA.
    let csv = dir.0.join("ultimi-rapporti.csv");
    std::fs::write(
        &csv,
        "codice_fiscale,qualifica,data_inizio,data_fine\nRSSMRA80A01H501U,5.1.2.2.0.1,2015-02-01,2026-09-30\nBAD,1,2,3\n",
    )
    .unwrap();
    let (code, stdout, err) = ncn.cli(&["import", "ultimi-rapporti", csv.to_str().unwrap()]);
    assert_eq!(code, 1, "one line refused");
    assert!(
        stdout.contains("2 records read, 1 stored, 1 refused"),
        "{stdout}"
    );
    assert!(err.contains("line 3"));
    let mut p = cv("2026112700000000000000005", "01");
    p.lavoratore.dati_anagrafici.codicefiscale = "RSSMRA80A01H501U".into();
    p.lavoratore.dati_anagrafici.cognome = "ROSSI".into();
    p.lavoratore.dati_anagrafici.nome = "MARIO".into();
    p.lavoratore.dati_anagrafici.sesso = "M".into();
    p.lavoratore.dati_anagrafici.datanascita = "1980-01-01".into();
    p.lavoratore.dati_anagrafici.idcomune = "H501".into();
    p.lavoratore.domicilio.idcomune = "H501".into();
    p.lavoratore.domicilio.cap = Some("00100".into());
    p.dati_curriculari.esperienze_lavorative = vec![EsperienzeLavorative {
        descrqualificasvolta: Some("Cuoco".into()),
        datainizio: Some("2015-02-01".into()),
        ..Default::default()
    }];
    let a = inps.invia("InvioPercettore", &scrivi(&p));
    assert!(esito_ok(&a), "{a:?}");
    assert!(
        a.1.contains("qualifica 5.1.2.2.0.1") && a.1.contains("inoltrata a SPC/LAZIO"),
        "{}",
        a.1
    );
    let codice_p = "2026112700000000000000005".to_string();
    eventually_blocking("LAZIO gets the percettore", || {
        lazio.codici("candidature").contains(&codice_p)
    });
    let scheda = lazio.api("candidature", &[])["risultati"]
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["codice"] == codice_p.as_str())
        .cloned()
        .unwrap();
    assert!(scheda.to_string().contains("5.1.2.2.0.1"), "{scheda}");
    eventually_blocking("the NCN's outbox is empty", || ncn.outbox().is_empty());
    assert!(!emilia.codici("candidature").contains(&codice_p));
    // A percettore whose region has no node (Milano: LOMBARDIA) stays at the NCN, and the
    // operator sees it in `pdd outbox trattenuti`.
    let (code, out, _) = ncn.cli(&["outbox", "trattenuti"]);
    assert_eq!(code, 0);
    assert!(out.contains("no percettore kept here"), "{out}");
    let mut q = p.clone();
    q.dati_sistema.codicecandidatura = "2026112700000000000000015".into();
    q.lavoratore.domicilio.idcomune = "F205".into();
    q.lavoratore.domicilio.cap = Some("20121".into());
    let a = inps.invia("InvioPercettore", &scrivi(&q));
    assert!(
        esito_ok(&a) && a.1.contains("LOMBARDIA non è nella rete"),
        "{a:?}"
    );
    let (code, out, err) = ncn.cli(&["outbox", "trattenuti"]);
    assert_eq!(code, 0, "{err}");
    assert!(
        out.contains("2026112700000000000000015")
            && out.contains("F205")
            && out.contains("LOMBARDIA is not in the network")
            && !out.contains(&codice_p),
        "{out}"
    );
    let (_, out, _) = ncn.cli(&["outbox", "trattenuti", "--format", "json"]);
    let v: Value = serde_json::from_str(&out).unwrap();
    assert_eq!(v[0]["codice"], "2026112700000000000000015", "{v}");
    assert_eq!(v[0]["regione"], "LOMBARDIA");
    let req = lazio.richiesta_di(&codice_p);
    assert!(req.contains("percettore&gt;SI&lt;"), "{req}");

    // 6. A rettifica and then a chiusura of C1 reach LAZIO and update every node.
    let mut r = cv("2026112700000000000000011", "02");
    r.dati_sistema.codicecandidaturaprecedente = Some(c1.into());
    let a = emilia.invia("InvioCandidatura", &scrivi(&r));
    assert!(
        esito_ok(&a) && a.1.contains("ambito nazionale: inoltrata a SPC/LAZIO"),
        "{a:?}"
    );
    eventually_blocking("LAZIO replaces C1 with its rettifica", || {
        let l = lazio.codici("candidature");
        l.contains(&"2026112700000000000000011".to_string()) && !l.contains(&c1.to_string())
    });
    let mut ch = cv("2026112700000000000000012", "02");
    ch.dati_sistema.codicecandidaturaprecedente = Some(c1.into());
    ch.dati_sistema.tipocandidatura = "02".into();
    ch.dati_sistema.motivochiusura = Some("03".into());
    let a = emilia.invia("InvioCandidatura", &scrivi(&ch));
    assert!(esito_ok(&a), "{a:?}");
    eventually_blocking("the chiusura reaches LAZIO", || {
        !lazio
            .codici("candidature")
            .contains(&"2026112700000000000000011".to_string())
    });
    for n in [&*ncn, &*emilia] {
        let l = n.codici("candidature");
        assert!(
            !l.contains(&c1.to_string()) && !l.contains(&"2026112700000000000000011".to_string()),
            "{}: {l:?}",
            n.nome
        );
    }

    // A chiusura ends it: a later rettifica does not reopen it.
    let mut riapre = cv("2026112700000000000000013", "02");
    riapre.dati_sistema.codicecandidaturaprecedente = Some(c1.into());
    let a = emilia.invia("InvioCandidatura", &scrivi(&riapre));
    assert!(
        !esito_ok(&a) && a.1.contains(&format!("{c1} è chiusa")),
        "{a:?}"
    );

    // 6b. A rettifica goes by its new ambito: 02 → 01 withdraws the CV from LAZIO; a later
    //     01 → 02 brings it back there.
    let c8 = "2026112700000000000000008";
    let a = emilia.invia("InvioCandidatura", &scrivi(&cv(c8, "02")));
    assert!(esito_ok(&a), "{a:?}");
    eventually_blocking("LAZIO publishes C8", || {
        lazio.codici("candidature").contains(&c8.to_string())
    });
    let mut r = cv("2026112700000000000000018", "01");
    r.dati_sistema.codicecandidaturaprecedente = Some(c8.into());
    let a = emilia.invia("InvioCandidatura", &scrivi(&r));
    assert!(
        esito_ok(&a) && a.1.contains("ritirata da SPC/LAZIO"),
        "{a:?}"
    );
    eventually_blocking("LAZIO withdraws C8", || {
        let l = lazio.codici("candidature");
        !l.contains(&c8.to_string()) && !l.contains(&"2026112700000000000000018".to_string())
    });
    assert!(emilia
        .codici("candidature")
        .contains(&"2026112700000000000000018".to_string()));
    let mut r = cv("2026112700000000000000028", "02");
    r.dati_sistema.codicecandidaturaprecedente = Some(c8.into());
    let a = emilia.invia("InvioCandidatura", &scrivi(&r));
    assert!(
        esito_ok(&a) && a.1.contains("inoltrata a SPC/LAZIO"),
        "{a:?}"
    );
    eventually_blocking("LAZIO publishes the rettifica now national", || {
        lazio
            .codici("candidature")
            .contains(&"2026112700000000000000028".to_string())
    });

    // 7. A contact about an intermediated CV reaches the intermediary, through the NCN.
    let c4 = "2026112700000000000000004";
    let mut m = cv(c4, "02");
    m.dati_sistema.idintermediario = Some("CPI0001".into());
    m.dati_sistema.codicefiscaleintermediario = Some("80213330584".into());
    m.dati_sistema.denominazioneintermediario = Some("CENTRO PER L'IMPIEGO DI BOLOGNA".into());
    m.dati_sistema.email = Some("cpi.bologna@example.it".into());
    m.dati_sistema.idcomune = Some("A944".into());
    let a = emilia.invia("InvioCandidatura", &scrivi(&m));
    assert!(esito_ok(&a), "{a:?}");
    eventually_blocking("LAZIO publishes the intermediated CV", || {
        lazio.codici("candidature").contains(&c4.to_string())
    });
    let mut msg = common::example("moduli/messaggio-rev038.xml");
    // From an employer on LAZIO's portal, interested in the CV.
    msg = msg
        .replace("2026112510000000000004711", c4)
        .replace("MRNTMS91C14Z133A", "00743110157")
        .replace("MARINELLI TOMMASO", "AZIENDA LAZIALE SRL")
        .replace(
            "tommaso.marinelli@example.it",
            "selezione@azienda-laziale.example",
        );
    let a = lazio.invia("InvioMessaggio", &msg);
    assert!(esito_ok(&a), "{a:?}");
    eventually_blocking("EMILIA delivers the contact", || {
        let (_, v) = get_json(emilia.locale, "/admin/contatti", &[]);
        !v.as_array().unwrap().is_empty()
    });
    let (_, contatti) = get_json(emilia.locale, "/admin/contatti", &[]);
    let k = &contatti[0];
    assert_eq!(k["riferimento"], c4);
    assert_eq!(k["per"]["tramite"], "intermediario", "{k}");
    assert_eq!(k["per"]["email"], "cpi.bologna@example.it");
    assert_eq!(k["da"]["email"], "selezione@azienda-laziale.example");
    assert!(
        !k.to_string().contains("tommaso.marinelli@example.it"),
        "{k}"
    );

    // The intermediary answers (04): the risposta goes back to LAZIO, where the contatto came
    // from, and reaches the employer who wrote it.
    let root = pdd::xml::parse_document(
        common::example("moduli/messaggio-rev038.xml").as_bytes(),
        pdd::xml::Limits::default(),
    )
    .unwrap();
    let Some(Modulo::Messaggio(mut r4)) = Modulo::leggi(&root) else {
        panic!()
    };
    r4.mittente.interlocutore = Interlocutore {
        codicefiscale: Some("80213330584".into()),
        denominazione: Some("CENTRO PER L'IMPIEGO DI BOLOGNA".into()),
        email: Some("cpi.bologna@example.it".into()),
        ..Default::default()
    };
    r4.destinatario.interlocutore = Interlocutore {
        codicefiscale: Some("00743110157".into()),
        denominazione: Some("AZIENDA LAZIALE SRL".into()),
        email: Some("selezione@azienda-laziale.example".into()),
        codiceoffertacandidatura: Some(c4.into()),
        ..Default::default()
    };
    r4.corpo.testomessaggio = "Il lavoratore è disponibile per un colloquio.".into();
    r4.dati_sistema.tipocomunicazione = "04".into();
    r4.dati_sistema.codicemessaggio = "2026112730000000000000096".into();
    r4.dati_sistema.codicemessaggioprecedente = Some(k["codice"].as_str().unwrap().into());
    let a = emilia.invia("InvioMessaggio", &Modulo::Messaggio(r4).scrivi());
    assert!(esito_ok(&a), "{a:?}");
    assert!(
        a.1.contains("inoltrato a SPC/LAZIO, da cui venne il contatto"),
        "{}",
        a.1
    );
    assert!(
        a.1.contains("risposta al contatto") && !a.1.contains("rettifica"),
        "worded as a risposta: {}",
        a.1
    );
    eventually_blocking("LAZIO delivers the risposta", || {
        let (_, v) = get_json(lazio.locale, "/admin/contatti", &[]);
        !v.as_array().unwrap().is_empty()
    });
    let (_, risposte) = get_json(lazio.locale, "/admin/contatti", &[]);
    let r = &risposte[0];
    assert_eq!(r["tipo"], "04", "{r}");
    assert_eq!(
        r["per"]["email"], "selezione@azienda-laziale.example",
        "{r}"
    );
    assert_eq!(r["da"]["email"], "cpi.bologna@example.it", "{r}");

    // Registered users see contact data: the intermediary's only, for an intermediated CV.
    let (code, out, err) = lazio.cli(&["users", "add", "operatore1"]);
    assert_eq!(code, 0, "{err}");
    let token = out.trim().to_string();
    let bearer = format!("Bearer {token}");
    let v = lazio.api("candidature", &[("Authorization", &bearer)]);
    let item = v["risultati"]
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["codice"] == c4)
        .unwrap();
    assert_eq!(item["contatto"]["tramite"], "intermediario", "{item}");
    assert!(!item.to_string().contains("tommaso.marinelli@example.it"));
    let (s, _) = get_json(
        lazio.locale,
        "/api/candidature",
        &[("Authorization", "Bearer wrong")],
    );
    assert_eq!(s, 401);
    let minuscolo = format!("bearer {token}");
    let (s, v) = get_json(
        lazio.locale,
        "/api/candidature",
        &[("Authorization", &minuscolo)],
    );
    assert_eq!(s, 200, "the scheme is case-insensitive: {v}");
    // LAZIO's portal reads through the API's own listener, which serves nothing else.
    let (s, v) = get_json(api_lazio, "/api/candidature", &[]);
    assert_eq!(s, 200);
    assert!(v["totale"].as_u64().unwrap() > 0);
    for (method, path) in [
        ("POST", "/pdd/PD/ClicLavoro/InvioCandidatura"),
        ("GET", "/admin/exchanges"),
        ("GET", "/admin/contatti"),
    ] {
        let (s, _) = http(api_lazio, method, path, &[], b"").unwrap();
        assert_eq!(s, 404, "{method} {path} on the API listener");
    }

    // 7b. Only who published a modulo changes it: LAZIO's chiusura of EMILIA's CV is refused,
    //     saying why, and the CV stays published everywhere.
    let mut ch = cv("2026112700000000000000021", "02");
    ch.dati_sistema.codicecandidaturaprecedente = Some(c4.into());
    ch.dati_sistema.tipocandidatura = "02".into();
    ch.dati_sistema.motivochiusura = Some("03".into());
    let a = lazio.invia("InvioCandidatura", &scrivi(&ch));
    assert!(!esito_ok(&a), "{a:?}");
    assert!(
        a.1.contains("chiusura rifiutata") && a.1.contains("pubblicata da SPC/EMILIA"),
        "{}",
        a.1
    );
    for n in [&*ncn, &*emilia, &*lazio] {
        assert!(
            n.codici("candidature").contains(&c4.to_string()),
            "{} dropped EMILIA's CV",
            n.nome
        );
    }
    // 7c. percettore=SI is the Ministry's to set: from a region it is refused, naming it.
    let mut si = cv("2026112700000000000000022", "02");
    si.dati_sistema.percettore = Some("SI".into());
    let a = emilia.invia("InvioCandidatura", &scrivi(&si));
    assert!(!esito_ok(&a) && a.1.contains("campo percettore"), "{a:?}");
    // 7d. A datascadenza beyond the 45 days is capped, and the capped date is written into
    //     the modulo stored and forwarded.
    let lontano = "2026112700000000000000023";
    let mut c = cv(lontano, "02");
    let oggi = chrono::Local::now().date_naive();
    c.dati_sistema.datascadenza = Some((oggi + chrono::Days::new(365)).to_string().into());
    let a = emilia.invia("InvioCandidatura", &scrivi(&c));
    assert!(esito_ok(&a), "{a:?}");
    let fissata =
        a.1.split("scadenza fissata al ")
            .nth(1)
            .map(|r| r[..10].to_string())
            .unwrap_or_else(|| panic!("no capped date: {}", a.1));
    eventually_blocking("LAZIO publishes the capped CV", || {
        lazio.codici("candidature").contains(&lontano.to_string())
    });
    let req = lazio.richiesta_di(lontano);
    assert!(
        req.contains(&format!("datascadenza&gt;{fissata}&lt;")),
        "LAZIO got the capped date {fissata}: {req}"
    );
    // A redelivery of the same document is still recognised as such.
    let a = emilia.invia("InvioCandidatura", &scrivi(&c));
    assert!(esito_ok(&a) && a.1.contains("identica"), "{a:?}");

    // 7e. The register of intermediaries: EMILIA's own intermediaries publish with the data
    //     of their accreditation; an unknown one, or a codice offerta from a non-agenzia, is
    //     refused at EMILIA with its own code and never leaves it.
    let registro = dir.0.join("intermediari-emilia.csv");
    std::fs::write(
        &registro,
        "codice_fiscale,denominazione,tipo,codice,indirizzo,comune,cap,telefono,fax,email\n\
         80213330584,CPI di Bologna (accreditato),cpi,CPI0001,Via Finelli 9/a,A944,40126,0510000000,,cpi.bologna@example.it\n\
         01234560017,\"Agenzia Esempio, Spa\",agenzia,AG0042,Via Roma 1,A944,40121,051111111,,sede@agenzia.example\n",
    )
    .unwrap();
    let (code, out, err) = emilia.cli(&["intermediari", "import", registro.to_str().unwrap()]);
    assert_eq!(code, 0, "{out}{err}");
    assert!(out.contains("2 stored"), "{out}");
    let (code, out, _) = emilia.cli(&["intermediari", "show", "80213330584"]);
    assert!(
        code == 0 && out.contains("CPI di Bologna (accreditato)"),
        "{out}"
    );
    let intermediata = |codice: &str, cf: &str| {
        let mut m = cv(codice, "02");
        m.dati_sistema.codicefiscaleintermediario = Some(cf.into());
        m.dati_sistema.denominazioneintermediario = Some("CPI BO".into());
        m
    };
    let ignoto = "2026112700000000000000024";
    let a = emilia.invia(
        "InvioCandidatura",
        &scrivi(&intermediata(ignoto, "09876540379")),
    );
    assert!(
        !esito_ok(&a) && a.1.contains("[INTERMEDIARIO_SCONOSCIUTO]") && a.1.contains("09876540379"),
        "{a:?}"
    );
    let noto = "2026112700000000000000025";
    let a = emilia.invia(
        "InvioCandidatura",
        &scrivi(&intermediata(noto, "80213330584")),
    );
    // (The answer is the NCN's; what EMILIA filled in shows in what the network received.)
    assert!(esito_ok(&a), "{a:?}");
    eventually_blocking(
        "LAZIO publishes the CV of the accredited intermediary",
        || lazio.codici("candidature").contains(&noto.to_string()),
    );
    let req = lazio.richiesta_di(noto);
    assert!(
        req.contains("CPI di Bologna (accreditato)")
            && req.contains("Via Finelli 9/a")
            && !req.contains("CPI BO&lt;"),
        "LAZIO got the register's data: {req}"
    );
    assert!(
        !ncn.codici("candidature").contains(&ignoto.to_string()),
        "the refused CV never left EMILIA"
    );
    // A codice offerta intermediario belongs to an agenzia per il lavoro.
    let con_codice = |codice: &str, cf: &str| {
        vacancy(codice).replace(
            "</cl:codiceofferta>",
            "</cl:codiceofferta><cl:codiceoffertaintermediario>OFF-77</cl:codiceoffertaintermediario>",
        ).replace("<cl:DatiSistema>", &format!("<cl:DatiSistema><cl:codicefiscaleintermediario>{cf}</cl:codicefiscaleintermediario>"))
    };
    let a = emilia.invia(
        "InvioVacancy",
        &con_codice("2026112700000000000000026", "80213330584"),
    );
    assert!(
        !esito_ok(&a) && a.1.contains("[CODICE_OFFERTA_INTERMEDIARIO]") && a.1.contains("cpi"),
        "{a:?}"
    );
    let a = emilia.invia(
        "InvioVacancy",
        &con_codice("2026112700000000000000027", "01234560017"),
    );
    assert!(esito_ok(&a), "{a:?}");
    eventually_blocking("LAZIO publishes the agenzia's vacancy", || {
        lazio
            .codici("vacancies")
            .contains(&"2026112700000000000000027".to_string())
    });
    let req = lazio.richiesta_di("2026112700000000000000027");
    assert!(
        req.contains("Agenzia Esempio, Spa") && req.contains("AG0042"),
        "{req}"
    );
    // At the NCN, the national portal's intermediaries are the NCN's register.
    let (code, _, err) = ncn.cli(&["intermediari", "import", registro.to_str().unwrap()]);
    assert_eq!(code, 0, "{err}");
    let a = ncn.invia_a(
        "InvioVacancy",
        &con_codice("2026112700000000000000029", "09876540379"),
        &[("X-PDD-Destinatario", "SPC/MinisteroLavoro")],
    );
    assert!(
        !esito_ok(&a) && a.1.contains("[INTERMEDIARIO_SCONOSCIUTO]"),
        "{a:?}"
    );
    let a = ncn.invia_a(
        "InvioVacancy",
        &con_codice("2026112700000000000000030", "01234560017"),
        &[("X-PDD-Destinatario", "SPC/MinisteroLavoro")],
    );
    assert!(
        esito_ok(&a)
            && a.1
                .contains("intermediario Agenzia Esempio, Spa (01234560017)")
            && a.1.contains("dal registro degli intermediari"),
        "{a:?}"
    );
    for n in [&*ncn, &*emilia] {
        for cf in ["80213330584", "01234560017"] {
            let (code, _, err) = n.cli(&["intermediari", "remove", cf]);
            assert_eq!(code, 0, "{}: {err}", n.nome);
        }
        let (_, out, _) = n.cli(&["intermediari", "list"]);
        assert!(out.contains("register is empty"), "{out}");
    }

    // 7f. Code tables: a citizenship, a profession and a language that are in no table are
    //     refused by the NCN, each with its code, and reach no region.
    let fuori = "2026112700000000000000031";
    let testo = scrivi(&cv(fuori, "02"))
        .replacen(">000</cl:idcittadinanza>", ">999</cl:idcittadinanza>", 1)
        .replacen(
            "<cl:idprofessione>6.5.1.1.1.0<",
            "<cl:idprofessione>9.9.9.9.9.9<",
            1,
        )
        .replacen("<cl:idlingua>003<", "<cl:idlingua>XYZ<", 1);
    let a = emilia.invia("InvioCandidatura", &testo);
    for code in [
        "[CITTADINANZA_SCONOSCIUTA]",
        "[PROFESSIONE_SCONOSCIUTA]",
        "[LINGUA_SCONOSCIUTA]",
    ] {
        assert!(!esito_ok(&a) && a.1.contains(code), "{code}: {a:?}");
    }
    assert!(!ncn.codici("candidature").contains(&fuori.to_string()));

    // 8. LAZIO is down while EMILIA publishes a national CV: the NCN keeps the forward and
    //    delivers it when LAZIO is back.
    lazio.stop();
    let c6 = "2026112700000000000000006";
    let a = emilia.invia("InvioCandidatura", &scrivi(&cv(c6, "02")));
    assert!(esito_ok(&a), "the NCN accepts while LAZIO is down: {a:?}");
    eventually_blocking("the NCN records a failed attempt", || {
        ncn.outbox()
            .iter()
            .any(|i| i["codice"] == c6 && i["tentativi"].as_u64() > Some(0))
    });
    let (_, listing, _) = ncn.cli(&["outbox", "list"]);
    assert!(
        listing.contains(c6) && listing.contains("SPC/LAZIO") && listing.contains("pending"),
        "{listing}"
    );
    lazio.start();
    eventually_blocking("LAZIO catches up", || {
        lazio.codici("candidature").contains(&c6.to_string())
    });
    eventually_blocking("the NCN's outbox is empty", || ncn.outbox().is_empty());

    // 9. Expiry: 46 days later LAZIO deactivates the CVs (and the 30-day vacancy is gone too).
    let (s, _) = http(
        lazio.locale,
        "POST",
        "/admin/clock",
        &[],
        b"{\"offset_secs\": 3974400}",
    )
    .unwrap();
    assert_eq!(s, 200);
    let (s, v) = http(lazio.locale, "POST", "/admin/scadenze", &[], b"").unwrap();
    assert_eq!(s, 200);
    let v: Value = serde_json::from_str(&v).unwrap();
    assert!(v["deactivated"].as_u64().unwrap() >= 4, "{v}");
    assert!(lazio.codici("candidature").is_empty());
    assert!(lazio.codici("vacancies").is_empty());
    let (_, v) = http(lazio.locale, "POST", "/admin/scadenze", &[], b"").unwrap();
    assert!(
        v.contains("\"deactivated\":0"),
        "a second sweep changes nothing: {v}"
    );
    // The state survives a restart (with the clock back to now).
    lazio.stop();
    lazio.start();
    assert!(lazio.codici("candidature").is_empty());
    assert!(
        emilia.codici("candidature").contains(&c6.to_string()),
        "EMILIA's clock did not move"
    );

    for n in nodi.iter_mut() {
        n.stop();
    }
}
