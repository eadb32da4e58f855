-- GET of BENCH_PATH (default /api/settings) with a different user's token per request, round
-- robin over the tokens file, each thread starting at its own offset. Requests are built once.
package.path = os.getenv("BENCH_LUA_DIR") .. "/?.lua;" .. package.path
local common = require("common")

local requests = {}
local next_index = 1
local thread_count = 0

function setup(thread)
  thread_count = thread_count + 1
  thread:set("offset", thread_count)
end

function init(args)
  local path = os.getenv("BENCH_PATH") or "/api/settings"
  for i, token in ipairs(common.tokens()) do
    requests[i] = wrk.format("GET", path, { ["Authorization"] = "Bearer " .. token })
  end
  next_index = ((offset or 1) * 7) % #requests + 1
end

function request()
  local r = requests[next_index]
  next_index = next_index % #requests + 1
  return r
end

done = common.done
