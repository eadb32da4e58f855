-- The mixed workload: for a random user of the tokens file, 90 % GET /api/settings, 8 % PATCH of
-- one of their settings, 2 % a merge import of a three-line .env. Requests are built once.
package.path = os.getenv("BENCH_LUA_DIR") .. "/?.lua;" .. package.path
local common = require("common")

local gets, patches, imports = {}, {}, {}
local thread_count = 0

function setup(thread)
  thread_count = thread_count + 1
  thread:set("seed", thread_count)
end

function init(args)
  math.randomseed(os.time() + (seed or 0) * 7919)
  for i, token in ipairs(common.tokens()) do
    local auth = "Bearer " .. token
    gets[i] = wrk.format("GET", "/api/settings", { ["Authorization"] = auth })
    local body = string.format('{"settings":{"KEY_%d":"patched-%08d"}}', i % 2, i)
    patches[i] = wrk.format("PATCH", "/api/settings",
      { ["Authorization"] = auth, ["Content-Type"] = "application/json" }, body)
    local dotenv = string.format("IMPORTED_A=a-%d\nIMPORTED_B=b-%d\nKEY_1=imported-%d\n", i, i, i)
    imports[i] = wrk.format("POST", "/api/settings/import",
      { ["Authorization"] = auth, ["Content-Type"] = "text/plain" }, dotenv)
  end
end

function request()
  local i = math.random(#gets)
  local r = math.random()
  if r < 0.90 then return gets[i] end
  if r < 0.98 then return patches[i] end
  return imports[i]
end

done = common.done
