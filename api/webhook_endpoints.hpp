#pragma once
// Webhook endpoints through the API: a tenant's named endpoints with their
// signing secrets, retry schedule and circuit-breaker state (table
// webhook_endpoints, schemas/migrations/0005_webhooks.sql; the worker's
// side is workers/webhooks/endpoints.hpp).
//
//   PUT /v1/webhook-endpoints/{name}   {secrets: ["whsec_…"] (1 or 2), retry_schedule_ms?: [ms…]}
//                                      201 created / 200 replaced; admin keys only
//   GET /v1/webhook-endpoints          {"endpoints": [endpoint…]} by name
//   GET /v1/webhook-endpoints/{name}   endpoint, or 404
//
// An endpoint as shown never contains its secrets:
//   {name, secret_count, retry_schedule_ms (null: the default), state: active | paused | trial,
//    consecutive_failures, paused_until, trial_until, created_at, updated_at}
// Replacing an endpoint (a secret rotation) keeps its circuit-breaker state.
//
// Parsing is pure; the SQL functions take caller-owned transactions.

#include "common/job.hpp"
#include "common/problem.hpp"

#include <pqxx/pqxx>

#include <optional>
#include <string>
#include <string_view>
#include <variant>
#include <vector>

namespace jobs {

struct webhook_endpoint_spec {
  std::vector<std::string> secrets;
  std::optional<std::vector<long>> retry_schedule_ms;
};

/// True for a valid endpoint name: 1 to 64 of A-Z a-z 0-9 _ . -
bool is_endpoint_name(std::string_view name);

/// The PUT body, or the 400 problem (invalid_json, invalid_field, missing_field, unknown_field).
std::variant<webhook_endpoint_spec, problem> parse_webhook_endpoint(std::string_view body);

/// Creates or replaces; returns (created, the endpoint's JSON).
std::pair<bool, std::string> put_webhook_endpoint(pqxx::work& w, const tenant_id& t,
                                                  const std::string& name,
                                                  const webhook_endpoint_spec& spec);
std::optional<std::string> find_webhook_endpoint_json(pqxx::connection& c, const tenant_id& t,
                                                      const std::string& name);
std::string list_webhook_endpoints_json(pqxx::connection& c, const tenant_id& t);
/// Deletes the endpoint; its JSON as it was, or nullopt when there is none.
std::optional<std::string> delete_webhook_endpoint(pqxx::connection& c, const tenant_id& t,
                                                   const std::string& name);

}  // namespace jobs
