-- wrk script for scripts/load-refresh.sh: POST /api/auth/refresh where every thread chains its own
-- refresh token family (run with as many threads as connections, `-t64 -c64`, so each connection
-- presents only the token its previous answer carried). Tokens come one per line from the file
-- named by REFRESH_TOKENS. A refusal breaks that thread's chain; refusals are reported at the end.

local tokens = {}
local next_index = 1

function setup(thread)
  if #tokens == 0 then
    for line in io.lines(os.getenv("REFRESH_TOKENS")) do
      tokens[#tokens + 1] = line
    end
  end
  thread:set("token", tokens[next_index])
  next_index = next_index + 1
end

function request()
  return wrk.format("POST", "/api/auth/refresh", { ["Content-Type"] = "application/json" },
    '{"refresh_token":"' .. token .. '"}')
end

function response(status, headers, body)
  if status == 200 then
    token = string.match(body, '"refresh_token":"([^"]+)"') or token
  end
end

function done(summary, latency, requests)
  io.write(string.format("refused (non-2xx) answers: %d of %d\n", summary.errors.status, summary.requests))
end
