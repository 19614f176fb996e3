-- wrk script for `just bench` (apps/oasis-server/benches/bench.py): rotates through the
-- requests listed in the file named by $BENCH_REQUESTS, one per line: `<path>\t<token or ->`.
-- Each wrk thread starts at a different offset so concurrent connections hit different fans.
local reqs = {}
local counter = 0
local threads = 0

function setup(thread)
  threads = threads + 1
  thread:set("offset", threads * 7919)
end

function init(args)
  local f = assert(io.open(os.getenv("BENCH_REQUESTS"), "r"))
  for line in f:lines() do
    local path, token = line:match("^([^\t]+)\t(.+)$")
    local headers = { ["Accept"] = "application/json" }
    if token ~= "-" then
      headers["Authorization"] = "Token " .. token
    end
    reqs[#reqs + 1] = wrk.format("GET", path, headers)
  end
  f:close()
  counter = (offset or 0) % #reqs
end

function request()
  counter = counter % #reqs + 1
  return reqs[counter]
end
