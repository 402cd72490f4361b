import DeerFlowNotifications
import Foundation

/// A self-signed certificate for `localhost` and `127.0.0.1` (valid until 2126), for STARTTLS tests.
enum TestCertificate {
    static let certificatePEM = """
-----BEGIN CERTIFICATE-----
MIIDJzCCAg+gAwIBAgIUQq77QjzWjei/Pmwc1opOC4quY40wDQYJKoZIhvcNAQEL
BQAwFDESMBAGA1UEAwwJbG9jYWxob3N0MCAXDTI2MTEyNTE3MzgzNloYDzIxMjYx
MTAxMTczODM2WjAUMRIwEAYDVQQDDAlsb2NhbGhvc3QwggEiMA0GCSqGSIb3DQEB
AQUAA4IBDwAwggEKAoIBAQDJTNhNPV8A6U1TJvSnsfjoFLZeFghHgj8KNYPYvbKL
104/mQA01YmStn5N3vRhWWffj8uItHT2NCoc1N6Caz0DFIGnJBmLlVqgStOHlcHu
c2wJQEXmNREWQRzluuBWg2vyuKjK/TJ5Tl3LYpncHNtGSLXXAcWGY5/fKkv85fee
CM1T3sjXPMgXEAJ2WSMU01JX35yz1OKtBWzWoz5MWIUVdC8I/HyXoOIJsiGwHrqV
SgmyThXQOROk2P/CaHHwegAFz03AoYr2mYKOGuHtUAq8KpWQ+Jrs5UrWsno1lfo6
W7TEQQifihrNv9TeMnzxtHhH8jleYGdSKSK32nRK2+DlAgMBAAGjbzBtMB0GA1Ud
DgQWBBRQmLrw3wr17EjovorCzTNmbHsoAzAfBgNVHSMEGDAWgBRQmLrw3wr17Ejo
vorCzTNmbHsoAzAPBgNVHRMBAf8EBTADAQH/MBoGA1UdEQQTMBGCCWxvY2FsaG9z
dIcEfwAAATANBgkqhkiG9w0BAQsFAAOCAQEAH4aHd1HhmtkF/sJ49Wf3O/rORzYZ
cvs+QIrwuTRTY3BlWPJXoLuekpX7VUYjKV6Fo/qtKeKLAGrEsZmYIHpSU0ucKv8v
Ebuj5nALV1nYFzDFnguIiCFNlaIgwoicB7j1LVzv/tYZrKXW82UmUrOrIUPhDyO4
Wdg1H1WRWCge2m0/oUy23D2oNQ4AJTsgEdSfRutaMK/EC2VSNe+plzNHeFkeJfCh
var9+trjpX0ZEV9KKWc0DufhHUNv3ATErF+IqAzxRl9jj6/Zv1gurPve6sOXTtEj
05bhMIDFm0un9zlLvx7HsuTgWtdEPe6xNggeC5tqSSTAAU3OFWI5Vllwpg==
-----END CERTIFICATE-----
"""

    static let privateKeyPEM = """
-----BEGIN PRIVATE KEY-----
MIIEvQIBADANBgkqhkiG9w0BAQEFAASCBKcwggSjAgEAAoIBAQDJTNhNPV8A6U1T
JvSnsfjoFLZeFghHgj8KNYPYvbKL104/mQA01YmStn5N3vRhWWffj8uItHT2NCoc
1N6Caz0DFIGnJBmLlVqgStOHlcHuc2wJQEXmNREWQRzluuBWg2vyuKjK/TJ5Tl3L
YpncHNtGSLXXAcWGY5/fKkv85feeCM1T3sjXPMgXEAJ2WSMU01JX35yz1OKtBWzW
oz5MWIUVdC8I/HyXoOIJsiGwHrqVSgmyThXQOROk2P/CaHHwegAFz03AoYr2mYKO
GuHtUAq8KpWQ+Jrs5UrWsno1lfo6W7TEQQifihrNv9TeMnzxtHhH8jleYGdSKSK3
2nRK2+DlAgMBAAECggEADoz6tKibQaxbjcdq12VWteXrYcUrb4nTZzhDkcryiUe0
rQWw/WCzG1MMMbJMTW4iQ0d4YacTrklKgv+DHv/D7wFQNuX138BZxuzpuesCE+ut
c0S9WLzcwZRO069MsIw65RZigxvGxnx67KzxrLa8ReoTFNnYrpRsdbvvtrXjzn05
EgApAT6RhGeGL24Y4u71nTHLE5+o3B1NY6e/q6XqzQiGfDEYKDoTuxltsuRlhNOD
IC2TN3YKDkGJv78+2vUoX47s660cnozXknnLaglfoSVfQsjPnbmD0Z9LWK7FPTkf
P4uhAMx1KQhvWp0C9va6JYJWHWDpoK8CmDfI7UFnCQKBgQDmLqD8hkd18CHuvSNj
u5PCDe4gku65OH/Fwp1I/HNUXVz8I6hPu1etKTKsHltnm8yYz4pAfsROeUj8s4rV
0WHXF4knN2mNj/D3kDZr9tHujvNkeFA5ZQTcSyRj1XKr74evMo8qZhE63SycRbdl
WZ3dObms2Ry3Z7FV6te2b0An+QKBgQDf4Oi9OxTriC+U+cI72so9nPeJQ8Fm+mkQ
vedF542fIAS+RCadRd33hMwZPRPVr04huIIuPRwd9IEjIPgjSoBKSeVW4fNGmkgu
8eAylZjkLUUBBPu+I7hpumo4Xii9tY0AYsEeQIbHWiZx8VfQP9gvC1SoCs8KvPIM
zHMmbDNzTQKBgAwHidBIsDlgqFVSuyO+LNWqZrR7GVDCvCK4rgGfd+OD0ZU3w9cO
4mEhUw2dtIcwpDukNQRz24yCWCcktu+/to5II5nSEokcaap2dfGkf4opHF020HJ/
bgaZQriY8ho8NWoZiVPc66+Y2Xj9R71bNp3WI3b+DbskByeHU2isXbz5AoGBAIC3
nxitT2nb8v+EWdhwArdJ+EhDXH8Imj+177KRXyuODSwXotvpv6UABRi9tRm2oQVi
P/a1y+StH1JDMmeX/gq4UdOSNXzyV24mQvDScgU+wd3EL7kycGTZeRjPij0IlPkT
zlTGZLdZbaE1UXe6PWFO8m1rSX6zA7e4FLySmUJBAoGAD09lAkeT2jzSnw1wUz4c
U5wR4yMHv4mRDVrt9B1S0fBI9ltalYg6o6Ps+q+E6F/lwDvJm34tyR0DVwVcvfI+
WO/Vyko50djsveN2OkWaHUkOWN5yE3olWM66L+RqUKxrAW4P9LT0pKji809NsvGn
KNoOPqpMcoR2rH8L2Rndj+4=
-----END PRIVATE KEY-----
"""

    /// The certificate in a temporary file, for `tls.ca_file`.
    static func writeCertificate() throws -> String {
        let path = FileManager.default.temporaryDirectory.appendingPathComponent("deerflow-test-ca-\(UUID().uuidString).pem").path
        try certificatePEM.write(toFile: path, atomically: true, encoding: .utf8)
        return path
    }
}

/// An alert for tests, at a fixed time.
func makeAlert(
    _ name: String = "SchedulerLag", severity: String? = "critical", labels: [String: String] = [:], annotations: [String: String] = [:],
    value: Double? = 75, status: NotificationAlert.Status = .firing
) -> NotificationAlert {
    var allLabels = labels
    if let severity { allLabels["severity"] = severity }
    let start = Date(timeIntervalSince1970: 1_717_243_200)  // 2024-06-01T12:00:00Z
    return NotificationAlert(
        name: name, labels: allLabels, annotations: annotations, value: value, status: status, startsAt: start,
        endsAt: status == .resolved ? start.addingTimeInterval(600) : nil)
}
