-- wrk script for webhook intake (bench.py): POSTs one signed Razorpay event body, each request
-- with its own X-Razorpay-Event-Id (so every one is a new event to store and enqueue).
-- Environment: WEBHOOK_BODY_FILE (the body), WEBHOOK_SIGNATURE (its HMAC), WEBHOOK_RUN (an id
-- prefix unique to the run).
local f = assert(io.open(os.getenv("WEBHOOK_BODY_FILE"), "rb"))
local body = f:read("*a")
f:close()
local signature = os.getenv("WEBHOOK_SIGNATURE")
local run = os.getenv("WEBHOOK_RUN") or "run"
local threads = 0

function setup(thread)
  threads = threads + 1
  thread:set("tid", threads)
end

local n = 0
request = function()
  n = n + 1
  return wrk.format("POST", "/razorpay/webhooks/", {
    ["Content-Type"] = "application/json",
    ["X-Razorpay-Signature"] = signature,
    ["X-Razorpay-Event-Id"] = string.format("evt_%s_%d_%d", run, tid or 0, n),
  }, body)
end
