/*
 * WS-Security cost per message with Apache WSS4J 1.6 (Debian libwss4j-java) on Apache Santuario
 * (libxml-security-java), for benches/wssec.rs to compare with pdd's own dsig::firma /
 * dsig::verifica. Same command line and JSON as benches/xmlsec_py.py; run it through
 * benches/wss4j/run.sh, which compiles this file and builds the classpath.
 *
 *     Wss4jBench KEY_PEM CERT_PEM UNSIGNED SIGNED SECONDS MODE [SAMPLE_OUT]
 *
 * MODE is sign, verify, both (sign then verify the result, per iteration) or all (the three).
 * SIGNED is a message pdd signed with KEY/CERT: the verify loop checks those very bytes.
 * SAMPLE_OUT, if given, receives one message signed here (for the caller to check).
 * Prints one JSON object: {"sign": {"iterations", "seconds", "messages_per_s", "us_per_message"},
 * ...}, plus "wss4j", "santuario", "java", "xmldsig_provider" and "timestamp_strict". Exit 1 if
 * SIGNED (or a message signed here) does not verify (a comparison where one side fails is
 * worthless), 2 on a usage problem.
 *
 * What one iteration does, in-process, one thread, after a JIT warm-up of each loop (at least
 * 2 s and 1000 iterations, at most 10 s), to match pdd:
 *   sign    bytes -> DOM (namespace-aware DocumentBuilder); WSSecHeader (first in the Header,
 *           mustUnderstand), WSSecTimestamp (TTL 300 s), WSSecSignature (BinarySecurityToken
 *           by direct reference, exclusive C14N, RSA-SHA256, SHA-256 digests) over the Body,
 *           the busta's IntestazioneMessaggio and the Timestamp, located by WSS4J by name and
 *           given wsu:Ids; serialised to a String (JDK identity Transformer). The header is laid
 *           out as pdd does: BinarySecurityToken, Timestamp, Signature. The private key and the
 *           certificate are parsed once, outside the loop, into an in-memory Merlin crypto that
 *           hands out the parsed key (no keystore unwrap per message), as pdd's firma takes a
 *           parsed key.
 *   verify  bytes -> DOM; WSSecurityEngine.processSecurityHeader with a crypto trusting
 *           CERT_PEM: BST, Timestamp (expiry + age) and Signature processing (references
 *           resolved by wsu:Id, digests, signature value, certificate trust and validity). WSS4J
 *           throws on any failure; the loop also requires a signature result. Before the loops
 *           the results are checked once more fully: the Body, the IntestazioneMessaggio and the
 *           Timestamp are signed, with RSA-SHA256 and SHA-256. If SIGNED's Timestamp would
 *           expire before the run ends (it lasts 5 minutes), the verifier is made lenient
 *           (setTimeStampStrict(false) and an unbounded Created age) and the JSON says
 *           "timestamp_strict": false; the Timestamp is still parsed and processed.
 */

import java.io.ByteArrayInputStream;
import java.io.InputStream;
import java.io.StringWriter;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Paths;
import java.security.KeyFactory;
import java.security.KeyStore;
import java.security.PrivateKey;
import java.security.cert.CertificateFactory;
import java.security.cert.X509Certificate;
import java.security.spec.PKCS8EncodedKeySpec;
import java.time.Instant;
import java.util.ArrayList;
import java.util.Base64;
import java.util.HashSet;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Locale;
import java.util.Map;
import java.util.Properties;
import java.util.Set;
import java.util.logging.Level;
import java.util.logging.Logger;

import javax.security.auth.callback.CallbackHandler;
import javax.xml.crypto.dsig.XMLSignatureFactory;
import javax.xml.namespace.QName;
import javax.xml.parsers.DocumentBuilder;
import javax.xml.parsers.DocumentBuilderFactory;
import javax.xml.transform.OutputKeys;
import javax.xml.transform.Transformer;
import javax.xml.transform.TransformerFactory;
import javax.xml.transform.dom.DOMSource;
import javax.xml.transform.stream.StreamResult;

import org.apache.ws.security.WSConstants;
import org.apache.ws.security.WSDataRef;
import org.apache.ws.security.WSEncryptionPart;
import org.apache.ws.security.WSSConfig;
import org.apache.ws.security.WSSecurityEngine;
import org.apache.ws.security.WSSecurityEngineResult;
import org.apache.ws.security.WSSecurityException;
import org.apache.ws.security.components.crypto.Merlin;
import org.apache.ws.security.message.WSSecHeader;
import org.apache.ws.security.message.WSSecSignature;
import org.apache.ws.security.message.WSSecTimestamp;
import org.w3c.dom.Document;
import org.w3c.dom.Element;
import org.w3c.dom.NodeList;

public final class Wss4jBench {
    static final String SOAP11 = "http://schemas.xmlsoap.org/soap/envelope/";
    static final String EGOV = "http://www.cnipa.it/schemas/2003/eGovIT/Busta1_0/";
    static final String RSA_SHA256 = "http://www.w3.org/2001/04/xmldsig-more#rsa-sha256";
    static final String SHA256 = "http://www.w3.org/2001/04/xmlenc#sha256";
    static final int TTL_SECONDS = 300;
    static final String ALIAS = "pdd";
    static final String KEY_PASSWORD = "bench"; // only guards the in-memory keystore entry

    static final QName BODY = new QName(SOAP11, "Body");
    static final QName BUSTA = new QName(EGOV, "IntestazioneMessaggio");
    static final QName TIMESTAMP = new QName(WSConstants.WSU_NS, "Timestamp");

    /*
     * Santuario 2.1's DOMReference warns "The input bytes to the digest operation are null" for
     * every reference whose last transform (here exclusive C14N, as WSS4J 1.6 drives it) streams
     * straight into the digest: the digest is right (xmlsec1 and pdd verify what is signed here,
     * WSS4J verifies what pdd signs), but the warnings flood stderr and cost time. Only that
     * logger is quieted (slf4j -> java.util.logging); the reference keeps the level set.
     */
    static final Logger DOMREFERENCE_LOG =
        Logger.getLogger("org.apache.jcp.xml.dsig.internal.dom.DOMReference");

    static final long WARMUP_MIN_NS = 2_000_000_000L;
    static final long WARMUP_MAX_NS = 10_000_000_000L;
    static final int WARMUP_MIN_ITERATIONS = 1000;

    /** A Merlin over in-memory keystores that hands out the already parsed private key. */
    static final class MemoryCrypto extends Merlin {
        private final PrivateKey key;

        MemoryCrypto(KeyStore keys, KeyStore trust, PrivateKey key) {
            setKeyStore(keys);
            setTrustStore(trust);
            this.key = key;
        }

        @Override
        public PrivateKey getPrivateKey(String alias, String password) throws WSSecurityException {
            return key != null && ALIAS.equals(alias) ? key : super.getPrivateKey(alias, password);
        }

        @Override
        public PrivateKey getPrivateKey(X509Certificate cert, CallbackHandler cb)
                throws WSSecurityException {
            return key != null ? key : super.getPrivateKey(cert, cb);
        }
    }

    interface Op {
        Object run() throws Exception;
    }

    private final DocumentBuilder builder;
    private final Transformer serialiser;
    private final MemoryCrypto signCrypto;
    private final MemoryCrypto verifyCrypto;
    private final WSSConfig signConfig;
    private final WSSecurityEngine engine;

    Wss4jBench(PrivateKey key, X509Certificate cert, boolean timestampStrict) throws Exception {
        DocumentBuilderFactory dbf = DocumentBuilderFactory.newInstance();
        dbf.setNamespaceAware(true);
        builder = dbf.newDocumentBuilder();
        serialiser = TransformerFactory.newInstance().newTransformer();
        serialiser.setOutputProperty(OutputKeys.ENCODING, "UTF-8");

        KeyStore keys = KeyStore.getInstance("JKS");
        keys.load(null, null);
        keys.setKeyEntry(ALIAS, key, KEY_PASSWORD.toCharArray(), new X509Certificate[] {cert});
        KeyStore trust = KeyStore.getInstance("JKS");
        trust.load(null, null);
        trust.setCertificateEntry(ALIAS, cert);
        signCrypto = new MemoryCrypto(keys, trust, key);
        verifyCrypto = new MemoryCrypto(trust, trust, null);

        signConfig = WSSConfig.getNewInstance();
        WSSConfig verifyConfig = WSSConfig.getNewInstance();
        if (!timestampStrict) {
            verifyConfig.setTimeStampStrict(false);
            verifyConfig.setTimeStampTTL(Integer.MAX_VALUE);
        }
        engine = new WSSecurityEngine();
        engine.setWssConfig(verifyConfig);
    }

    Document parse(byte[] msg) throws Exception {
        return builder.parse(new ByteArrayInputStream(msg));
    }

    String serialise(Document doc) throws Exception {
        doc.setXmlStandalone(true); // no standalone="no" in the XML declaration
        StringWriter out = new StringWriter(8192);
        serialiser.transform(new DOMSource(doc), new StreamResult(out));
        return out.toString();
    }

    /** One message signed with WSS4J in pdd's profile; returns the serialised envelope. */
    String sign(byte[] msg) throws Exception {
        Document doc = parse(msg);
        WSSecHeader header = new WSSecHeader();
        header.setMustUnderstand(true);
        header.insertSecurityHeader(doc);

        WSSecTimestamp timestamp = new WSSecTimestamp(signConfig);
        timestamp.setTimeToLive(TTL_SECONDS);
        timestamp.prepare(doc);
        timestamp.prependToHeader(header);

        WSSecSignature signature = new WSSecSignature(signConfig);
        signature.setUserInfo(ALIAS, KEY_PASSWORD);
        signature.setKeyIdentifierType(WSConstants.BST_DIRECT_REFERENCE);
        signature.setSignatureAlgorithm(RSA_SHA256);
        signature.setDigestAlgo(SHA256);
        signature.setSigCanonicalization(WSConstants.C14N_EXCL_OMIT_COMMENTS);
        signature.prepare(doc, signCrypto, header);
        List<WSEncryptionPart> parts = new ArrayList<>(3);
        parts.add(new WSEncryptionPart(BODY.getLocalPart(), BODY.getNamespaceURI(), "Element"));
        parts.add(new WSEncryptionPart(BUSTA.getLocalPart(), BUSTA.getNamespaceURI(), "Element"));
        parts.add(new WSEncryptionPart(TIMESTAMP.getLocalPart(), TIMESTAMP.getNamespaceURI(), "Element"));
        List<javax.xml.crypto.dsig.Reference> refs = signature.addReferencesToSign(parts, header);
        signature.computeSignature(refs, false, null); // appended: after the Timestamp
        signature.prependBSTElementToHeader(header);   // the token first, as pdd lays it out
        return serialise(doc);
    }

    /** Processes the Security header; WSS4J throws if anything fails. Returns the results. */
    List<WSSecurityEngineResult> verify(byte[] msg) throws Exception {
        Document doc = parse(msg);
        List<WSSecurityEngineResult> results =
            engine.processSecurityHeader(doc, null, null, verifyCrypto);
        if (results == null || signatureResult(results) == null) {
            throw new IllegalStateException("no wsse:Security header or no signature in it");
        }
        return results;
    }

    static WSSecurityEngineResult signatureResult(List<WSSecurityEngineResult> results) {
        for (WSSecurityEngineResult r : results) {
            if (((Integer) r.get(WSSecurityEngineResult.TAG_ACTION)) == WSConstants.SIGN) {
                return r;
            }
        }
        return null;
    }

    /** The once-only full check: what was signed, and how. Throws with the reason if wrong. */
    static void checkProfile(List<WSSecurityEngineResult> results) {
        WSSecurityEngineResult sig = signatureResult(results);
        boolean timestamp = false;
        for (WSSecurityEngineResult r : results) {
            timestamp |= ((Integer) r.get(WSSecurityEngineResult.TAG_ACTION)) == WSConstants.TS;
        }
        if (!timestamp) {
            throw new IllegalStateException("no wsu:Timestamp processed");
        }
        Object method = sig.get(WSSecurityEngineResult.TAG_SIGNATURE_METHOD);
        if (!RSA_SHA256.equals(method)) {
            throw new IllegalStateException("signature method " + method);
        }
        @SuppressWarnings("unchecked")
        List<WSDataRef> refs = (List<WSDataRef>) sig.get(WSSecurityEngineResult.TAG_DATA_REF_URIS);
        Set<QName> signed = new HashSet<>();
        for (WSDataRef ref : refs) {
            if (!SHA256.equals(ref.getDigestAlgorithm())) {
                throw new IllegalStateException("digest " + ref.getDigestAlgorithm() + " for " + ref.getName());
            }
            signed.add(ref.getName());
        }
        for (QName q : new QName[] {BODY, BUSTA, TIMESTAMP}) {
            if (!signed.contains(q)) {
                throw new IllegalStateException(q + " is not signed (signed: " + signed + ")");
            }
        }
    }

    static Map<String, Object> rate(Op op, double seconds) throws Exception {
        long sink = 0;
        int warm = 0;
        long t0 = System.nanoTime();
        for (;;) {
            sink += op.run().hashCode();
            warm++;
            long elapsed = System.nanoTime() - t0;
            if ((elapsed >= WARMUP_MIN_NS && warm >= WARMUP_MIN_ITERATIONS) || elapsed >= WARMUP_MAX_NS) {
                break;
            }
        }
        long limit = (long) (seconds * 1e9);
        long n = 0;
        t0 = System.nanoTime();
        long elapsed;
        do {
            for (int i = 0; i < 10; i++) {
                sink += op.run().hashCode();
            }
            n += 10;
            elapsed = System.nanoTime() - t0;
        } while (elapsed < limit);
        double secs = elapsed / 1e9;
        Map<String, Object> out = new LinkedHashMap<>();
        out.put("iterations", n);
        out.put("seconds", secs);
        out.put("messages_per_s", n / secs);
        out.put("us_per_message", secs * 1e6 / n);
        if (sink == 42) {
            System.err.print(""); // keeps the results alive for the JIT
        }
        return out;
    }

    static PrivateKey readKey(String path) throws Exception {
        String pem = new String(Files.readAllBytes(Paths.get(path)), StandardCharsets.US_ASCII);
        int begin = pem.indexOf("-----BEGIN PRIVATE KEY-----");
        int end = pem.indexOf("-----END PRIVATE KEY-----");
        if (begin < 0 || end < begin) {
            throw new IllegalArgumentException(path + ": not a PKCS#8 PEM private key");
        }
        String b64 = pem.substring(begin + 27, end).replaceAll("\\s", "");
        PKCS8EncodedKeySpec spec = new PKCS8EncodedKeySpec(Base64.getDecoder().decode(b64));
        return KeyFactory.getInstance("RSA").generatePrivate(spec);
    }

    static X509Certificate readCert(String path) throws Exception {
        try (InputStream in = Files.newInputStream(Paths.get(path))) {
            return (X509Certificate) CertificateFactory.getInstance("X.509").generateCertificate(in);
        }
    }

    /** The wsu:Expires of the message's Timestamp, or null if there is none. */
    static Instant expires(Document doc) {
        NodeList l = doc.getElementsByTagNameNS(WSConstants.WSU_NS, "Expires");
        return l.getLength() == 0 ? null : Instant.parse(l.item(0).getTextContent().trim());
    }

    static String pomVersion(Class<?> inJar, String pomProperties) {
        try (InputStream in = inJar.getClassLoader().getResourceAsStream(pomProperties)) {
            if (in != null) {
                Properties p = new Properties();
                p.load(in);
                String v = p.getProperty("version");
                if (v != null) {
                    return v;
                }
            }
        } catch (Exception ignored) {
            // fall through
        }
        String v = inJar.getPackage().getImplementationVersion();
        return v != null ? v : "unknown";
    }

    static String json(Object v) {
        if (v instanceof Map) {
            StringBuilder b = new StringBuilder("{");
            for (Map.Entry<?, ?> e : ((Map<?, ?>) v).entrySet()) {
                if (b.length() > 1) {
                    b.append(", ");
                }
                b.append(json(e.getKey().toString())).append(": ").append(json(e.getValue()));
            }
            return b.append('}').toString();
        }
        if (v instanceof String) {
            StringBuilder b = new StringBuilder("\"");
            for (char c : ((String) v).toCharArray()) {
                if (c == '"' || c == '\\') {
                    b.append('\\').append(c);
                } else if (c < 0x20) {
                    b.append(String.format("\\u%04x", (int) c));
                } else {
                    b.append(c);
                }
            }
            return b.append('"').toString();
        }
        if (v instanceof Double) {
            return String.format(Locale.ROOT, "%.6f", (Double) v);
        }
        return String.valueOf(v);
    }

    static void usage() {
        System.err.println("usage: Wss4jBench KEY_PEM CERT_PEM UNSIGNED SIGNED SECONDS"
            + " sign|verify|both|all [SAMPLE_OUT]");
    }

    public static void main(String[] argv) throws Exception {
        if (argv.length < 6 || argv.length > 7) {
            usage();
            System.exit(2);
        }
        String mode = argv[5];
        if (!mode.equals("sign") && !mode.equals("verify") && !mode.equals("both") && !mode.equals("all")) {
            usage();
            System.exit(2);
        }
        double seconds;
        byte[] unsigned;
        byte[] signed;
        PrivateKey key;
        X509Certificate cert;
        try {
            seconds = Double.parseDouble(argv[4]);
            if (!(seconds > 0)) {
                throw new IllegalArgumentException("SECONDS must be positive");
            }
            key = readKey(argv[0]);
            cert = readCert(argv[1]);
            unsigned = Files.readAllBytes(Paths.get(argv[2]));
            signed = Files.readAllBytes(Paths.get(argv[3]));
        } catch (Exception e) {
            System.err.println("Wss4jBench: " + e);
            usage();
            System.exit(2);
            return;
        }

        DOMREFERENCE_LOG.setLevel(Level.SEVERE);
        WSSConfig.init();

        // Strict only if SIGNED's Timestamp outlives the whole run (worst case warm-ups).
        int loops = mode.equals("all") ? 3 : 1;
        long runMillis = (long) (loops * (WARMUP_MAX_NS / 1e6 + seconds * 1000)) + 5000;
        Instant exp;
        try {
            DocumentBuilderFactory dbf = DocumentBuilderFactory.newInstance();
            dbf.setNamespaceAware(true);
            exp = expires(dbf.newDocumentBuilder().parse(new ByteArrayInputStream(signed)));
        } catch (Exception e) {
            System.err.println("FAIL " + argv[3] + " does not parse: " + e);
            System.exit(1);
            return;
        }
        boolean strict = exp != null && exp.isAfter(Instant.now().plusMillis(runMillis));
        Wss4jBench b = new Wss4jBench(key, cert, strict);

        // A comparison where one side fails is worthless: check both directions once.
        try {
            checkProfile(b.verify(signed));
        } catch (Exception e) {
            System.err.println("FAIL WSS4J does not verify pdd's signed message: " + e);
            System.exit(1);
        }
        String mine = b.sign(unsigned);
        try {
            checkProfile(b.verify(mine.getBytes(StandardCharsets.UTF_8)));
        } catch (Exception e) {
            System.err.println("FAIL WSS4J does not verify its own signed message: " + e);
            System.exit(1);
        }
        if (argv.length == 7) {
            Files.write(Paths.get(argv[6]), mine.getBytes(StandardCharsets.UTF_8));
        }

        Map<String, Object> out = new LinkedHashMap<>();
        try {
            if (mode.equals("sign") || mode.equals("all")) {
                out.put("sign", rate(() -> b.sign(unsigned), seconds));
            }
            if (mode.equals("verify") || mode.equals("all")) {
                out.put("verify", rate(() -> b.verify(signed), seconds));
            }
            if (mode.equals("both") || mode.equals("all")) {
                out.put("both", rate(() -> b.verify(b.sign(unsigned).getBytes(StandardCharsets.UTF_8)), seconds));
            }
        } catch (Exception e) {
            System.err.println("FAIL during the measured loops: " + e);
            System.exit(1);
        }
        out.put("wss4j", pomVersion(WSSConfig.class, "META-INF/maven/org.apache.ws.security/wss4j/pom.properties"));
        out.put("santuario", pomVersion(org.apache.xml.security.Init.class,
            "META-INF/maven/org.apache.santuario/xmlsec/pom.properties"));
        out.put("java", System.getProperty("java.version"));
        java.security.Provider p = XMLSignatureFactory.getInstance("DOM").getProvider();
        out.put("xmldsig_provider", p.getName() + " " + p.getVersionStr());
        out.put("timestamp_strict", strict);
        System.out.println(json(out));
    }
}
