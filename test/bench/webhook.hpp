#pragma once
// The webhook workload's setup and check (the receiver is sink.hpp):
// webhooks.deliver jobs aimed at the sink, the tenant's signing endpoint
// they need, and which succeeded jobs never reached the sink.
//
// Functions take caller-owned connections and throw on failure.

#include <pqxx/connection>

#include <string>
#include <unordered_set>

namespace jobs::bench {

/// One submission: a webhooks.deliver job POSTing about `payload_bytes` of
/// JSON body to http://127.0.0.1:SINK_PORT/hook.
std::string webhook_job(int sink_port, int payload_bytes);

/// Gives `tenant` the endpoint "default" with a random secret, over the API
/// on `api_port` (PUT /v1/webhook-endpoints/default with an admin key).
void create_webhook_endpoint(pqxx::connection& c, int api_port, const std::string& tenant);

/// The tenant's succeeded jobs whose id is not among `delivered`.
long undelivered(pqxx::connection& c, const std::string& tenant,
                 const std::unordered_set<std::string>& delivered);

}  // namespace jobs::bench
