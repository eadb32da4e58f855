-- Shared by the bench scripts: the tokens file (one access token a line, from BENCH_TOKENS), and
-- a `done` that prints one machine-readable line the bench script parses.
local M = {}

function M.tokens()
  local path = os.getenv("BENCH_TOKENS")
  local list = {}
  for line in io.lines(path) do
    if #line > 0 then list[#list + 1] = line end
  end
  assert(#list > 0, "no tokens in " .. tostring(path))
  return list
end

function M.done(summary, latency, requests)
  local e = summary.errors
  local errors = e.connect + e.read + e.write + e.status + e.timeout
  io.write(string.format(
    "BENCH requests=%d duration_us=%d p50_us=%d p99_us=%d p999_us=%d errors=%d status=%d\n",
    summary.requests, summary.duration,
    latency:percentile(50), latency:percentile(99), latency:percentile(99.9),
    errors, e.status))
end

return M
