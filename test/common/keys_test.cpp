// The form of the keys this platform makes: anything else is unknown
// without a database lookup (api/platform.cpp).
#include "common/keys.hpp"

#include <doctest/doctest.h>

#include <string>

TEST_CASE("well_formed_api_key: jk_ and 48 lower-case hex digits") {
  std::string hex48(48, 'a');
  CHECK(jobs::well_formed_api_key("jk_" + hex48));
  CHECK(jobs::well_formed_api_key("jk_0123456789abcdef0123456789abcdef0123456789abcdef"));
  for (const std::string& bad : {std::string(), std::string("jk_"), "jk_" + std::string(47, 'a'),
                                 "jk_" + std::string(49, 'a'), "jk_" + std::string(47, 'a') + "A",
                                 "jk_" + std::string(47, 'a') + "g", "JK_" + hex48, "jx_" + hex48,
                                 "jk_" + std::string(47, 'a') + " ", std::string(51, 'a')}) {
    CAPTURE(bad);
    CHECK_FALSE(jobs::well_formed_api_key(bad));
  }
}
