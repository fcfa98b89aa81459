-- wrk script for scripts/bench-webhook.sh: POST the AdmissionReview in the file named by the
-- first script argument (`wrk ... URL -- FILE`) on every request, over wrk's keep-alive connections.
function init(args)
  local f = assert(io.open(args[1], "rb"))
  wrk.body = f:read("*a")
  f:close()
  wrk.method = "POST"
  wrk.headers["Content-Type"] = "application/json"
end
