"""The local platform's deliberate misbehaviours: each breaks one documented rule so that the
conformance suite can prove it catches a broken mesh (tests/test_suite_can_fail.py). Self-tests only."""

from __future__ import annotations

from enum import StrEnum


class Misbehaviour(StrEnum):
    """A StrEnum, so a member compares equal to its name on the command line and in reports."""

    description: str

    def __new__(cls, value: str, description: str) -> Misbehaviour:
        member = str.__new__(cls, value)
        member._value_ = value
        member.description = description
        return member

    WEIGHTS_SKEWED = "weights-skewed", "moves 15 points of weight to the first destination of every split"
    FAULTS_IGNORED = "faults-ignored", "drops every fault (delay and abort)"
    MIRROR_DROPPED = "mirror-dropped", "drops every mirror policy"
    STRICT_AS_PERMISSIVE = "strict-as-permissive", "treats STRICT PeerAuthentication as PERMISSIVE"
    MTLS_PLAINTEXT = "mtls-plaintext", "clients never originate mTLS (no identity reaches servers)"
    GATEWAY_HOST_IGNORED = "gateway-host-ignored", "gateway servers accept every host"
    GATEWAY_HOST_PORT_KEPT = ("gateway-host-port-kept",
                              "the gateway matches a Host sent with a port (host:80) by the whole value, so no "
                              "virtual host takes it")
    GATEWAY_XFF_NOT_APPENDED = ("gateway-xff-not-appended",
                                "the gateway does not take its peer's address as the client's (no use_remote_address): "
                                "X-Forwarded-For reaches the app as the client sent it, without the address appended")
    GATEWAY_FIRST_SERVER_HOSTS = ("gateway-first-server-hosts",
                                  "every server of a Gateway binds routes by the first server's hosts (a host only a "
                                  "later server names gets no route)")
    GATEWAY_CREDENTIAL_IGNORED = ("gateway-credential-ignored",
                                  "HTTPS gateway servers present the gateway's mesh certificate, not credentialName's")
    HEADER_MATCH_IGNORED = "header-match-ignored", "VirtualService header matches are dropped"
    NO_INJECTION = "no-injection", "no workload gets a sidecar"
    PERMISSIVE_AS_STRICT = "permissive-as-strict", "treats PERMISSIVE PeerAuthentication as STRICT"
    AUTO_MTLS_IGNORES_DISABLE = ("auto-mtls-ignores-disable",
                                 "clients send mTLS to every sidecar, even one whose policy is DISABLE")
    UNSET_NOT_INHERITED = ("unset-not-inherited",
                           "a PeerAuthentication whose mode is UNSET counts as PERMISSIVE instead of inheriting its "
                           "parent scope's mode")
    PRECEDENCE_REVERSED = ("precedence-reversed",
                           "the widest PeerAuthentication wins (mesh > namespace > workload)")
    MIRROR_PERCENTAGE_IGNORED = "mirror-percentage-ignored", "mirrors every request whatever mirrorPercentage says"
    TIMEOUTS_IGNORED = "timeouts-ignored", "drops VirtualService route timeouts"
    RETRIES_IGNORED = "retries-ignored", "drops VirtualService retry settings (the mesh default applies)"
    CIRCUIT_BREAKERS_IGNORED = "circuit-breakers-ignored", "drops DestinationRule connection-pool limits"
    AUTHZ_IGNORED = "authz-ignored", "sidecars enforce no AuthorizationPolicy"
    AUTHZ_NEGATIONS_IGNORED = ("authz-negations-ignored",
                               "AuthorizationPolicy not* fields (notPaths, notMethods, notPrincipals, ...) are dropped")
    AUTHZ_HOSTS_CASE_SENSITIVE = ("authz-hosts-case-sensitive",
                                  "AuthorizationPolicy hosts and notHosts match the Host case-sensitively (Istio "
                                  "before 1.9.8/1.10.4/1.11.1, GHSA-7774-7vr3-cc8j: 'Echo:8080' escapes 'echo:8080')")
    AUTHZ_NOT_NAMESPACES_OF_WORKLOAD = ("authz-not-namespaces-of-workload",
                                        "AuthorizationPolicy notNamespaces is matched against the workload's own "
                                        "namespace, not the caller's (a caller from elsewhere counts as local)")
    ROOT_NAMESPACE_POLICIES_IGNORED = ("root-namespace-policies-ignored",
                                       "AuthorizationPolicies and RequestAuthentications in the root namespace "
                                       "(istio-system) apply to workloads of that namespace only, not mesh-wide")
    UNVERIFIED_REQUEST_PRINCIPAL = ("unverified-request-principal",
                                    "an AuthorizationPolicy requestPrincipals pattern matches every request on a "
                                    "workload no RequestAuthentication covers (as if an unvalidated token gave one)")
    AUTHZ_PATH_WITH_QUERY = ("authz-path-with-query",
                             "AuthorizationPolicy paths and notPaths match the whole :path, query string included")
    EXACT_AS_PREFIX = "exact-as-prefix", "exact string matches (uri, headers, query, method, authority) act as prefixes"
    REGEX_AS_PARTIAL_MATCH = ("regex-as-partial-match",
                              "regex matches succeed when the regex matches any part of the value, not all of it")
    REQUEST_HEADER_OPERATIONS_IGNORED = ("request-header-operations-ignored",
                                         "VirtualService request header set/add/remove are dropped")
    RESPONSE_HEADER_OPERATIONS_IGNORED = ("response-header-operations-ignored",
                                          "VirtualService response header add/remove and a destination's response "
                                          "headers are dropped (a rule's response set is kept)")
    HEADER_ADD_REPLACES = ("header-add-replaces",
                           "header add operations (VirtualService headers, Gateway API header modifiers) replace the "
                           "values a header already has instead of appending one")
    HEADER_SET_APPENDS = ("header-set-appends",
                          "header set operations (VirtualService headers, Gateway API header modifiers) append a "
                          "value instead of overwriting the ones a header already has")
    DELAY_PERCENT_IGNORED = "delay-percent-ignored", "a delay's deprecated integer percent is read as 0"
    METHOD_MATCH_IGNORED = "method-match-ignored", "method matches (VirtualService and HTTPRoute) are dropped"
    QUERY_MATCH_IGNORED = "query-match-ignored", "query parameter matches (VirtualService and HTTPRoute) are dropped"
    ROUTE_NAMES_GENERATED = ("route-names-generated",
                             "a VirtualService rule's name is not its route's name (the access log shows a generated "
                             "one)")
    MATCH_PORT_IGNORED = "match-port-ignored", "VirtualService match.port is ignored (the rule matches on every port)"
    MIRROR_SUBSET_IGNORED = ("mirror-subset-ignored",
                             "a mirror's subset is dropped (copies go to any of the host's pods)")
    MIRROR_SHADOW_HOST = ("mirror-shadow-host",
                          "a mirror's copy carries the Host with '-shadow' appended (Istio < 1.28's default)")
    MIRROR_PORT_IGNORED = ("mirror-port-ignored",
                           "a mirror's port is dropped (copies go to the port the request came in on)")
    ALLOWED_ROUTES_SAME_IGNORED = ("allowed-routes-same-ignored",
                                   "a Gateway API listener admitting routes of its own namespace (allowedRoutes "
                                   "Same, the default) also takes routes of other namespaces")
    PARENT_PORT_IGNORED = ("parent-port-ignored",
                           "an HTTPRoute parentRef's port is ignored (the route attaches to listeners on any port)")
    PARENT_NAMESPACE_IGNORED = ("parent-namespace-ignored",
                                "an HTTPRoute parentRef's namespace is ignored (the parent is looked up in the "
                                "route's own namespace)")
    BACKEND_KIND_IGNORED = ("backend-kind-ignored",
                            "an HTTPRoute backendRef of any group and kind is resolved as the Service of its name")
    ZERO_WEIGHT_BACKENDS_USED = ("zero-weight-backends-used",
                                 "an HTTPRoute backendRef of weight 0 is given the default weight 1 (it gets traffic; "
                                 "a rule whose only backend has weight 0 is served)")
    INVALID_BACKEND_SHARE_DROPPED = ("invalid-backend-share-dropped",
                                     "an HTTPRoute rule's invalid backendRef beside a valid one is dropped (its "
                                     "share goes to the valid backend; none of it answers 500)")
    REFERENCE_GRANT_IGNORED = ("reference-grant-ignored",
                               "an HTTPRoute backendRef to another namespace is used without a ReferenceGrant")
    HTTPS_REDIRECT_IGNORED = "https-redirect-ignored", "gateway servers serve plain HTTP despite httpsRedirect"
    PORT_LEVEL_MTLS_IGNORED = "port-level-mtls-ignored", "PeerAuthentication portLevelMtls is ignored"
    STRICT_CLIENT_CERTIFICATE_OPTIONAL = ("strict-client-certificate-optional",
                                          "STRICT sidecars take TLS from a caller without a client certificate "
                                          "(one-way TLS, no identity)")
    NAMESPACE_POLICY_EVERYWHERE = ("namespace-policy-everywhere",
                                   "a namespace-wide PeerAuthentication also covers workloads of every other "
                                   "namespace")
    IDENTITY_FROM_DEPLOYMENT_NAME = ("identity-from-deployment-name",
                                     "SPIFFE identities name the Deployment instead of the ServiceAccount")
    XFCC_SUBJECT_DROPPED = ("xfcc-subject-dropped",
                            "the X-Forwarded-Client-Cert a sidecar gives its app leaves out the client certificate's "
                            "Subject")
    XFCC_FORWARDED_FROM_UNTRUSTED = ("xfcc-forwarded-from-untrusted",
                                     "sidecars pass a plaintext caller's own X-Forwarded-Client-Cert to the app")
    WILDCARD_WITHOUT_DOT_BOUNDARY = ("wildcard-without-dot-boundary",
                                     "a host '*.example.com' also matches 'badexample.com' and 'example.com'")
    OUTLIER_DETECTION_IGNORED = "outlier-detection-ignored", "drops DestinationRule outlierDetection (no ejection)"
    OUTLIER_CONSECUTIVE_OFF_BY_ONE = ("outlier-consecutive-off-by-one",
                                      "outlierDetection ejects a host after consecutive5xxErrors + 1 errors")
    JWT_IGNORED = "jwt-ignored", "sidecars verify no JWT (RequestAuthentication dropped)"
    JWT_RULE_OPTIONS_IGNORED = ("jwt-rule-options-ignored",
                                "RequestAuthentication jwtRules audiences, fromHeaders and forwardOriginalToken "
                                "are dropped (any audience, tokens only from Authorization: Bearer, never forwarded)")
    JWT_EXPIRY_UNCHECKED = ("jwt-expiry-unchecked",
                            "RequestAuthentication lets expired tokens pass (a clock skew of years)")
    PATH_PREFIX_AS_STRING_PREFIX = ("path-prefix-as-string-prefix",
                                    "Gateway API PathPrefix '/foo' matches as a string prefix, taking '/foobar' too")
    GATEWAY_API_PRECEDENCE_IGNORED = ("gateway-api-precedence-ignored",
                                      "HTTPRoute rules are tried in the order written, not by Gateway API precedence")
    TRACE_HEADERS_DROPPED = ("trace-headers-dropped",
                             "sidecars strip x-request-id, traceparent and B3 headers before the app")
    # Interactions and defaults (conformance/test_interactions.py).
    ROUTE_TIMEOUT_PER_TRY = ("route-timeout-per-try",
                             "a route's timeout limits each try, not the whole request, when the route retries")
    PER_TRY_TIMEOUT_IGNORED = "per-try-timeout-ignored", "drops retries.perTryTimeout"
    RETRY_ON_IGNORED = "retry-on-ignored", "VirtualService retries retry every 5xx, whatever retryOn says or omits"
    DEFAULT_RETRIES_503 = "default-retries-503", "the default retry policy also retries 503 (Istio <= 1.23's default)"
    RETRY_SAME_HOST = ("retry-same-host",
                       "VirtualService retries may go back to the host whose try just failed (no previous-hosts "
                       "predicate: retryIgnorePreviousHosts' default true ignored)")
    RETRY_ONCE_AS_NONE = "retry-once-as-none", "VirtualService retries with attempts: 1 make no retry (as attempts: 0)"
    FAULTS_AT_DESTINATION = ("faults-at-destination",
                             "faults are injected by the destination's sidecar, where the caller's retries see them")
    SUBSET_FIRST_LABEL_ONLY = "subset-first-label-only", "a DestinationRule subset selects pods by its first label only"
    LOAD_BALANCER_IGNORED = ("load-balancer-ignored",
                             "DestinationRule loadBalancer.simple is dropped (istiod's default LEAST_REQUEST applies)")
    SUBSET_POLICY_IGNORED = ("subset-policy-ignored",
                             "a DestinationRule subset's trafficPolicy is dropped (its cluster takes the rule's)")
    ROOT_SIDECAR_OVER_NAMESPACE = ("root-sidecar-over-namespace",
                                   "the root namespace's Sidecar wins over a namespace's own (selector-less) one")
    REGISTRY_ONLY_IGNORED = ("registry-only-ignored",
                             "outboundTrafficPolicy REGISTRY_ONLY acts as ALLOW_ANY (unregistered hosts pass through)")
    SERVICE_ENTRIES_IGNORED = "service-entries-ignored", "ServiceEntries are dropped (no cluster, no route)"
    EGRESS_WILDCARD_VS_IGNORED = ("egress-wildcard-vs-ignored",
                                  "a mesh VirtualService naming a ServiceEntry host by wildcard (*.domain) does not "
                                  "apply to it (only one naming the host exactly does)")
    DNS_AS_PASSTHROUGH = ("dns-as-passthrough",
                          "ServiceEntries with resolution DNS forward to where the client connected (as NONE does), "
                          "not to their endpoints")
    PASSTHROUGH_BLOCKED = ("passthrough-blocked",
                           "the default outbound policy ALLOW_ANY acts as REGISTRY_ONLY (unregistered hosts get 502)")


Misbehaviours = frozenset[Misbehaviour]


def parse(names: object) -> Misbehaviours:
    """Misbehaviours from names (an iterable of strings or a comma-separated string); unknown names raise
    ValueError listing the known ones."""
    items = names.split(",") if isinstance(names, str) else list(names)  # type: ignore[call-overload]
    chosen = {str(n).strip() for n in items if str(n).strip()}
    known = {m.value for m in Misbehaviour}
    unknown = chosen - known
    if unknown:
        raise ValueError(f"unknown misbehaviour(s) {sorted(unknown)}; known: {sorted(known)}")
    by_name = {m.value: m for m in Misbehaviour}
    return frozenset(by_name[n] for n in chosen)
