"""Semantic mutants of the local platform's translator, for bench/translator_mutants.py: each does one documented
behaviour of Istio or the Gateway API wrong, the way a real mesh has shipped such bugs, as a text edit of one
translator module. The syntactic mutants (a comparison flipped, a constant moved by one) find checks that do not
look; these find behaviour no check sends an input to.

Each names the behaviour it breaks and where that behaviour is documented. An edit whose `find` text no longer
occurs exactly once in its module is reported as stale by the audit, never silently skipped. None of them is a
misbehaviour of the local platform (those are switched on by name, see platform/local/misbehaviour.py): these are
plain code changes, as the issue's planted bugs were."""

from __future__ import annotations

from dataclasses import dataclass

TRANSLATOR = "src/meshconform/platform/local/translator"


@dataclass(frozen=True)
class SemanticMutant:
    module: str  # file name in the translator folder
    name: str
    behaviour: str  # what a conforming mesh does, and where that is documented
    edits: tuple[tuple[str, str], ...]  # (find, replace), each found exactly once in the module


MUTANTS = (
    # ------------------------------------------------------------------ routes.py (VirtualService)
    SemanticMutant("routes.py", "header-add-replaces",
                   "headers.*.add appends a value to a header already there (VirtualService Headers reference: "
                   "'Append the given values to the headers specified by keys')",
                   (('for k, v in ops.add.items()]', 'for k, v in ops.add.items() if False]'),
                    ('for k, v in ops.set.items()]', 'for k, v in [*ops.set.items(), *ops.add.items()]]'))),
    SemanticMutant("routes.py", "header-set-appends",
                   "headers.*.set overwrites a header the request already carries (VirtualService Headers: "
                   "'Overwrite the headers specified by key with the given values')",
                   (('set_action = append if Misbehaviour.HEADER_SET_APPENDS in misbehave else overwrite',
                     'set_action = append'),)),
    SemanticMutant("routes.py", "mirror-shadow-suffix",
                   "a mirror's copy keeps the request's Host (Istio >= 1.28: no '-shadow' suffix by default)",
                   (('"disable_shadow_host_suffix_append": Misbehaviour.MIRROR_SHADOW_HOST not in self.misbehave',
                     '"disable_shadow_host_suffix_append": False'),)),
    SemanticMutant("routes.py", "ignore-uri-case-dropped",
                   "HTTPMatchRequest ignoreUriCase matches the uri case-insensitively (VirtualService reference)",
                   (('if match.ignore_uri_case and uri is not None and uri.regex is None:',
                     'if False:'),)),
    SemanticMutant("routes.py", "without-headers-missing-not-empty",
                   "withoutHeaders matches a request lacking the header (istiod's route_test.go: a missing header "
                   "counts as empty)",
                   (('**({} if value.is_presence else {"treat_missing_header_as_empty": True})', '**{}'),)),
    SemanticMutant("routes.py", "retry-status-codes-dropped",
                   "retryOn with a status code ('503') retries that status (HTTPRetry reference, Envoy's "
                   "retriable-status-codes)",
                   (('if codes and "retriable-status-codes" not in names:', 'if False:'),)),
    SemanticMutant("routes.py", "retry-same-host",
                   "retries go to another host than the failed try (istiod sets Envoy's previous_hosts predicate "
                   "on every retry policy)",
                   (('"num_retries": retries.attempts,\n                              "retry_host_predicate": '
                     'PREVIOUS_HOSTS_PREDICATE,', '"num_retries": retries.attempts,'),)),
    SemanticMutant("routes.py", "abort-percentage-ignored",
                   "fault.abort.percentage aborts that share of requests only (HTTPFaultInjection.Abort reference)",
                   (('"percentage": fraction(rule.fault.abort.fraction)}', '"percentage": fraction(1.0)}'),)),
    # ------------------------------------------------------------------ authz.py (AuthorizationPolicy)
    SemanticMutant("authz.py", "authz-path-with-query",
                   "AuthorizationPolicy paths match the request path without its query string (istiod matches "
                   "Envoy's url_path, which excludes the query)",
                   (('return {"url_path": {"path": _string(v)}}',
                     'return {"header": {"name": ":path", "string_match": _string(v)}}'),)),
    SemanticMutant("authz.py", "allow-nothing-allows-all",
                   "an ALLOW policy without rules allows nothing (AuthorizationPolicy reference: 'allow-nothing')",
                   (('        if not chosen:\n            continue',
                     '        if not chosen or not any(p.spec.rules for p in chosen):\n            continue'),)),
    SemanticMutant("authz.py", "namespace-as-prefix",
                   "source.namespaces matches the caller's namespace exactly (AuthorizationPolicy reference: "
                   "exact, prefix, suffix or presence match)",
                   (('f"spiffe://[^/]+/ns/{name}/sa/.+"', 'f"spiffe://[^/]+/ns/{name}.*"'),)),
    SemanticMutant("selection.py", "root-namespace-ignored",
                   "a policy in the root namespace (istio-system) applies to matching workloads in every namespace "
                   "(AuthorizationPolicy and RequestAuthentication references)",
                   (('else {\n        pod.namespace, ROOT_NAMESPACE}', 'else {pod.namespace}'),)),
    SemanticMutant("selection.py", "any-namespace-applies",
                   "a policy outside the root namespace applies only to workloads of its own namespace",
                   (('if resource.metadata.namespace not in scopes:\n            continue',
                     'if False:\n            continue'),)),
    # ------------------------------------------------------------------ jwt.py (RequestAuthentication)
    SemanticMutant("jwt.py", "expiry-skew-hours",
                   "an expired token is refused (RequestAuthentication: 'not expired'; Envoy's jwt_authn allows "
                   "60 s of clock skew by default, which istiod keeps)",
                   (('"payload_in_metadata": rule.issuer}',
                     '"payload_in_metadata": rule.issuer, "clock_skew_seconds": 7200}'),)),
    SemanticMutant("jwt.py", "missing-token-refused",
                   "a request without a token passes authentication (RequestAuthentication reference; only an "
                   "AuthorizationPolicy can require one)",
                   (('[*requirements, {"allow_missing": {}}]', '[*requirements]'),)),
    SemanticMutant("jwt.py", "token-always-forwarded",
                   "the token is removed before the app unless forwardOriginalToken (JWTRule reference)",
                   (('"forward": rule.forward_original_token and options', '"forward": True'),)),
    # ------------------------------------------------------------------ mtls.py (PeerAuthentication)
    SemanticMutant("mtls.py", "unset-not-inherited",
                   "mode UNSET inherits from the parent scope (PeerAuthentication reference)",
                   (('if policy is not None and policy.spec.mtls is not None and policy.spec.mtls.mode is not '
                     'MutualTLSMode.UNSET:',
                     'if policy is not None and policy.spec.mtls is not None:'),)),
    SemanticMutant("mtls.py", "default-strict",
                   "with no PeerAuthentication a workload is PERMISSIVE (PeerAuthentication reference: the default)",
                   (('            return policy.spec.mtls.mode\n    return MutualTLSMode.PERMISSIVE',
                     '            return policy.spec.mtls.mode\n    return MutualTLSMode.STRICT'),)),
    SemanticMutant("mtls.py", "port-level-without-workload-selector",
                   "portLevelMtls counts only in a policy with a workload selector (PeerAuthentication reference)",
                   (('workload = next((p for p in policies if p.metadata.namespace == pod.namespace\n'
                     '                     and pod.namespace != ROOT_NAMESPACE and _selects(p, pod)), None)',
                     'workload = next((p for p in policies if p.metadata.namespace == pod.namespace\n'
                     '                     and pod.namespace != ROOT_NAMESPACE and (_selects(p, pod) or '
                     'p.spec.port_level_mtls)), None)'),)),
    # ------------------------------------------------------------------ clusters.py (DestinationRule)
    SemanticMutant("clusters.py", "consecutive-errors-off-by-one",
                   "a host is ejected after consecutive5xxErrors errors, not one more (OutlierDetection reference)",
                   (('result["consecutive_5xx"] = od.consecutive_5xx_errors',
                     'result["consecutive_5xx"] = od.consecutive_5xx_errors + 1'),)),
    SemanticMutant("clusters.py", "panic-threshold-envoy-default",
                   "ejected hosts stay out however many are ejected (minHealthPercent defaults to 0: istiod sets "
                   "Envoy's panic threshold from it)",
                   (('float(policy.outlier_detection.min_health_percent or 0)',
                     'float(policy.outlier_detection.min_health_percent or 50)'),)),
    SemanticMutant("clusters.py", "max-ejection-default-all",
                   "maxEjectionPercent defaults to 10 % (OutlierDetection reference; Envoy still ejects one host)",
                   (('"max_ejection_percent": od.max_ejection_percent or 10', '"max_ejection_percent": '
                     'od.max_ejection_percent or 100'),)),
    SemanticMutant("clusters.py", "subset-policy-replaces-whole",
                   "a subset's trafficPolicy overrides the rule's field by field (DestinationRule reference: "
                   "'will override the corresponding settings')",
                   (('policy = (base_policy or TrafficPolicy()).overlay(own)',
                     'policy = own or base_policy or TrafficPolicy()'),)),
    SemanticMutant("clusters.py", "subset-ignores-service-selector",
                   "a subset's pods are the service's pods carrying the subset's labels (DestinationRule Subset)",
                   (('wanted = {**service.spec.selector, **labels}',
                     'wanted = labels or dict(service.spec.selector)'),)),
    # ------------------------------------------------------------------ egress.py (ServiceEntry, Sidecar)
    SemanticMutant("egress.py", "dns-as-original-destination",
                   "resolution DNS with endpoints sends to the endpoints, not where the client connected "
                   "(ServiceEntry reference: 'the DNS addresses specified in the endpoints will be resolved')",
                   (('if resolution is ServiceEntryResolution.NONE:',
                     'if resolution is not ServiceEntryResolution.STATIC:'),)),
    SemanticMutant("egress.py", "export-to-dot-everywhere",
                   "exportTo '.' exports a ServiceEntry to its own namespace only (ServiceEntry reference)",
                   (('("." in export and namespace == own)', '("." in export)'),)),
    SemanticMutant("egress.py", "target-port-ignored",
                   "a ServiceEntry port's targetPort is where endpoints listen (ServicePort reference)",
                   (('return mapped.get(port.name) or port.target_port or port.number',
                     'return mapped.get(port.name) or port.number'),)),
    SemanticMutant("egress.py", "endpoint-ports-ignored",
                   "an endpoint's ports map overrides the port it is reached on (WorkloadEntry ports)",
                   (('return mapped.get(port.name) or port.target_port or port.number',
                     'return port.target_port or port.number'),)),
    SemanticMutant("egress.py", "root-sidecar-over-namespace",
                   "a namespace's own Sidecar wins over the root namespace's (Sidecar reference)",
                   (('for candidates in (selecting, own, root):', 'for candidates in (selecting, root, own):'),)),
    # ------------------------------------------------------------------ gateway_api.py (Gateway API)
    SemanticMutant("gateway_api.py", "zero-weight-backend-served",
                   "a backendRef of weight 0 gets no traffic; a rule whose only backend has weight 0 answers 500 "
                   "(HTTPBackendRef weight; HTTPRouteRule backendRefs)",
                   (('backends = [b for b in refs if b.weight > 0]',
                     'backends = [b.model_copy(update={"weight": b.weight or 1}) for b in refs]'),)),
    SemanticMutant("gateway_api.py", "allowed-routes-same-ignored",
                   "a listener's allowedRoutes 'Same' admits routes of the Gateway's namespace only (Gateway API "
                   "AllowedRoutes)",
                   (('if listener.allowed_routes.namespaces.from_ is gw.FromNamespaces.SAME and own != namespace:',
                     'if False:'),)),
    SemanticMutant("gateway_api.py", "section-name-ignored",
                   "a parentRef's sectionName attaches the route to that listener only (Gateway API ParentReference)",
                   (('if ref.section_name is not None and listener.name != ref.section_name:', 'if False:'),)),
    SemanticMutant("gateway_api.py", "header-modifier-add-as-set",
                   "RequestHeaderModifier add appends to a header already there (Gateway API HTTPHeaderFilter: "
                   "'Add adds the given header(s) (name, value) to the request before the action')",
                   (('"set": {h.name.lower(): h.value for h in modifier.set},',
                     '"set": {h.name.lower(): h.value for h in [*modifier.set, *modifier.add]},'),
                    ('"add": {h.name.lower(): h.value for h in modifier.add},', '"add": {},'))),
    SemanticMutant("gateway_api.py", "mirror-fraction-ignored",
                   "RequestMirror percent/fraction mirrors that share only (Gateway API HTTPRequestMirrorFilter)",
                   (('rule["mirrorPercentage"] = {"value": 100.0 * item.request_mirror.share}',
                     'rule["mirrorPercentage"] = {"value": 100.0}'),)),
    # ------------------------------------------------------------------ listeners.py (sidecars, gateway)
    SemanticMutant("listeners.py", "first-server-hosts-only",
                   "each server of a Gateway serves its own hosts (Gateway reference: servers, hosts)",
                   (('named = gateway.spec.servers[0].hosts if Misbehaviour.GATEWAY_FIRST_SERVER_HOSTS in misbehave '
                     'else server.hosts', 'named = gateway.spec.servers[0].hosts'),)),
    SemanticMutant("listeners.py", "wildcard-vs-over-exact",
                   "a VirtualService naming a service exactly wins over a wildcard one (istiod: most exact match)",
                   (('    owners: dict[str, VirtualService] = {}\n    for exact in (True, False):',
                     '    owners: dict[str, VirtualService] = {}\n    for exact in (False, True):'),)),
    SemanticMutant("listeners.py", "gateway-host-port-kept",
                   "the gateway matches a Host sent with a port by its name (istiod's gateway strips any port)",
                   (('use_remote_address=True, preserve_external_request_id=True, strip_any_host_port=True,',
                     'use_remote_address=True, preserve_external_request_id=True, strip_any_host_port=False,'),)),
    # ------------------------------------------------------------------ names.py
    SemanticMutant("names.py", "short-name-across-namespaces",
                   "a bare service name resolves in the caller's own namespace only (Kubernetes DNS search path)",
                   (('    if caller_namespace == namespace:\n        bare.append(name)', '    bare.append(name)'),)),
)
