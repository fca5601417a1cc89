-- The JSON reader agrees with serde_json (the safetensors reference) on the
-- edges: integers beyond int64 are floats, never clamped; numbers beyond
-- the double range, invalid UTF-8 and lone surrogates are errors; nesting
-- is bounded both ways.
local J = require "moonflow.json"
local H = require "helpers"

describe("json edges", function()
  it("keeps integers inside int64 exact and reads those outside as floats, never clamped", function()
    assert.are.equal(math.mininteger, J.decode("-9223372036854775808"))
    assert.are.equal("integer", math.type(J.decode("-9223372036854775808")))
    assert.are.equal(math.maxinteger, J.decode("9223372036854775807"))
    local below = J.decode("-9223372036854775809")
    assert.are.equal("float", math.type(below))
    assert.are.equal(-9223372036854775808.0, below) -- the nearest double, -2^63
    local far = J.decode("-100000000000000000000")
    assert.are.equal("float", math.type(far))
    assert.are.equal(-1e20, far)
    local above = J.decode("18446744073709551616")
    assert.are.equal("float", math.type(above))
    assert.are.equal(2.0 ^ 64, above)
  end)

  it("rejects numbers beyond the double range, as serde_json does", function()
    H.errors(function() J.decode("1e400") end, "invalid JSON at byte 1", "out of range")
    H.errors(function() J.decode("[-1.5e309]") end, "invalid JSON at byte 2", "out of range")
    assert.are.equal(0.0, J.decode("1e-400")) -- underflow rounds to zero
  end)

  it("rejects invalid UTF-8 inside strings", function()
    local cases = {
      { '"\xff"', "invalid UTF-8" }, -- never a UTF-8 byte
      { '"a\x80b"', "invalid UTF-8" }, -- a lone continuation byte
      { '"\xc3"', "invalid UTF-8" }, -- a cut two-byte sequence
      { '"\xc0\xaf"', "invalid UTF-8" }, -- an overlong '/'
      { '"\xe0\x80\xaf"', "invalid UTF-8" }, -- an overlong three-byte '/'
      { '"\xed\xa0\x80"', "invalid UTF-8" }, -- U+D800, a surrogate encoded in UTF-8
      { '"\xf4\x90\x80\x80"', "invalid UTF-8" }, -- U+110000, beyond Unicode
      { '{"\xfe":1}', "invalid UTF-8" }, -- in a key too
    }
    for _, c in ipairs(cases) do
      H.errors(function() J.decode(c[1]) end, "invalid JSON at byte", c[2])
    end
    assert.are.equal("é€😀", J.decode('"\xc3\xa9\xe2\x82\xac\xf0\x9f\x98\x80"'))
  end)

  it("rejects escapes of lone surrogates", function()
    for _, s in ipairs { '"\\udc00"', '"\\ud800x"', '"\\ud800\\u0041"', '"\\ud800\\ud800"' } do
      H.errors(function() J.decode(s) end, "invalid JSON at byte", "surrogate")
    end
  end)

  it("bounds nesting with a clear error, however deep the input", function()
    assert.are.equal(1, #J.decode(("["):rep(200) .. ("]"):rep(200)))
    H.errors(function() J.decode(("["):rep(1000000)) end, "invalid JSON at byte 202", "nesting deeper than 200")
    H.errors(function() J.decode(('{"a":'):rep(100000)) end, "nesting deeper than 200")
    local deep = {}
    local t = deep
    for _ = 1, 100000 do
      t[1] = {}
      t = t[1]
    end
    H.errors(function() J.encode(deep) end, "json.encode", "nesting deeper than 200")
  end)
end)

describe("json encoding writes only what it can read back", function()
  it("refuses strings that are not valid UTF-8, in values and keys", function()
    H.errors(function() J.encode({ note = "a\xffb" }) end, "json.encode", "$.note", "not valid UTF-8")
    H.errors(function() J.encode({ ["\xc0\xaf"] = 1 }) end, "json.encode", "not valid UTF-8")
    H.errors(function() J.encode({ "\xed\xa0\x80" }, { lenient = true }) end, "json.encode", "$[1]", "not valid UTF-8")
    assert.are.equal('"é€😀"', J.encode("é€😀"))
  end)

  it("refuses tables whose integer and string keys would print alike", function()
    H.errors(function() J.encode({ [1] = "a", ["1"] = "b", x = 0 }) end, "json.encode", 'key "1"', "twice")
  end)

  it("a save that would write an unreadable file fails and keeps the old file", function()
    local mf = require "moonflow"
    local path = os.tmpname()
    mf.io.save_safetensors(path, { w = mf.zeros({ 2 }) })
    local f = assert(io.open(path, "rb"))
    local before = f:read("a")
    f:close()
    H.errors(function() mf.io.save_safetensors(path, { ["w\xff"] = mf.zeros({ 2 }) }) end,
      "moonflow.io.save_safetensors", path, "not valid UTF-8")
    H.errors(function() mf.io.save(path, { config = { name = "\xff" } }) end, "moonflow.io.save", "not valid UTF-8")
    f = assert(io.open(path, "rb"))
    assert.are.equal(before, f:read("a"))
    f:close()
    os.remove(path)
  end)
end)
