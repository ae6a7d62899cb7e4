//! Serialises a [`Busta`] as an `eGov_IT:Intestazione` header block.

use std::fmt::Write;

use super::{time, Busta, Ora, Parte, ACTOR, NS_BUSTA};
use crate::soap::SOAP11_NS;
use crate::xml::{escape_attr, escape_text};

fn parte(out: &mut String, el: &str, p: &Parte) {
    let _ = write!(
        out,
        "<eGov_IT:{el}><eGov_IT:IdentificativoParte tipo=\"{}\"",
        escape_attr(&p.tipo)
    );
    if let Some(ind) = &p.indirizzo {
        let _ = write!(out, " indirizzoTelematico=\"{}\"", escape_attr(ind));
    }
    let _ = write!(
        out,
        ">{}</eGov_IT:IdentificativoParte></eGov_IT:{el}>",
        escape_text(&p.nome)
    );
}

fn ora(out: &mut String, el: &str, o: &Ora) {
    let _ = write!(
        out,
        "<eGov_IT:{el} tempo=\"{}\">{}</eGov_IT:{el}>",
        o.tempo.as_str(),
        time::format(o.ora)
    );
}

fn simple(out: &mut String, el: &str, v: &str) {
    let _ = write!(out, "<eGov_IT:{el}>{}</eGov_IT:{el}>", escape_text(v));
}

/// The header block. `wsu_id`s are written when set, so a signature can point at them.
pub fn write(b: &Busta) -> String {
    let mut out = String::with_capacity(1600);
    let _ = write!(
        out,
        "<eGov_IT:Intestazione xmlns:eGov_IT=\"{NS_BUSTA}\" xmlns:SOAP_ENV=\"{SOAP11_NS}\" SOAP_ENV:actor=\"{ACTOR}\" SOAP_ENV:mustUnderstand=\"1\">"
    );
    match &b.wsu_id {
        Some(id) => {
            let _ = write!(
                out,
                "<eGov_IT:IntestazioneMessaggio xmlns:wsu=\"{}\" wsu:Id=\"{}\">",
                super::NS_WSU,
                escape_attr(id)
            );
        }
        None => out.push_str("<eGov_IT:IntestazioneMessaggio>"),
    }
    if let Some(m) = &b.mittente {
        parte(&mut out, "Mittente", m);
    }
    if let Some(d) = &b.destinatario {
        parte(&mut out, "Destinatario", d);
    }
    if let Some(p) = b.profilo {
        out.push_str("<eGov_IT:ProfiloCollaborazione");
        if let Some(t) = &b.tipo_servizio_correlato {
            let _ = write!(out, " tipo=\"{}\"", escape_attr(t));
        }
        if let Some(s) = &b.servizio_correlato {
            let _ = write!(out, " servizioCorrelato=\"{}\"", escape_attr(s));
        }
        let _ = write!(out, ">{}</eGov_IT:ProfiloCollaborazione>", p.as_str());
    }
    if let Some(c) = &b.collaborazione {
        simple(&mut out, "Collaborazione", c);
    }
    if let Some(s) = &b.servizio {
        let _ = write!(
            out,
            "<eGov_IT:Servizio tipo=\"{}\">{}</eGov_IT:Servizio>",
            escape_attr(&s.tipo),
            escape_text(&s.nome)
        );
    }
    if let Some(a) = &b.azione {
        simple(&mut out, "Azione", a);
    }
    out.push_str("<eGov_IT:Messaggio>");
    if let Some(id) = &b.id {
        simple(&mut out, "Identificatore", id);
    }
    if let Some(o) = &b.ora_registrazione {
        ora(&mut out, "OraRegistrazione", o);
    }
    if let Some(r) = &b.riferimento_messaggio {
        simple(&mut out, "RiferimentoMessaggio", r);
    }
    if let Some(s) = b.scadenza {
        simple(&mut out, "Scadenza", &time::format(s));
    }
    out.push_str("</eGov_IT:Messaggio>");
    if b.profilo_trasmissione {
        out.push_str("<eGov_IT:ProfiloTrasmissione");
        if let Some(i) = b.inoltro {
            let _ = write!(out, " inoltro=\"{}\"", i.as_str());
        }
        if let Some(c) = b.conferma_ricezione {
            let _ = write!(out, " confermaRicezione=\"{c}\"");
        }
        out.push_str("/>");
    }
    if let Some(n) = b.sequenza {
        let _ = write!(out, "<eGov_IT:Sequenza numeroProgressivo=\"{n:07}\"/>");
    }
    out.push_str("</eGov_IT:IntestazioneMessaggio>");
    if let Some(rs) = b.riscontri.as_ref().filter(|r| !r.is_empty()) {
        out.push_str("<eGov_IT:ListaRiscontri>");
        for r in rs {
            out.push_str("<eGov_IT:Riscontro>");
            simple(&mut out, "Identificatore", &r.id);
            ora(&mut out, "OraRegistrazione", &r.ora);
            out.push_str("</eGov_IT:Riscontro>");
        }
        out.push_str("</eGov_IT:ListaRiscontri>");
    }
    if let Some(ts) = b.trasmissioni.as_ref().filter(|t| !t.is_empty()) {
        out.push_str("<eGov_IT:ListaTrasmissioni>");
        for t in ts {
            out.push_str("<eGov_IT:Trasmissione>");
            parte(&mut out, "Origine", &t.origine);
            parte(&mut out, "Destinazione", &t.destinazione);
            ora(&mut out, "OraRegistrazione", &t.ora);
            out.push_str("</eGov_IT:Trasmissione>");
        }
        out.push_str("</eGov_IT:ListaTrasmissioni>");
    }
    if let Some(es) = b.eccezioni.as_ref().filter(|e| !e.is_empty()) {
        out.push_str("<eGov_IT:ListaEccezioni>");
        for e in es {
            let _ = write!(
                out,
                "<eGov_IT:Eccezione contestoCodifica=\"{}\" codiceEccezione=\"{}\" rilevanza=\"{}\" posizione=\"{}\"/>",
                escape_attr(&e.contesto),
                e.codice,
                e.rilevanza.as_str(),
                escape_attr(&e.posizione)
            );
        }
        out.push_str("</eGov_IT:ListaEccezioni>");
    }
    out.push_str("</eGov_IT:Intestazione>");
    out
}
