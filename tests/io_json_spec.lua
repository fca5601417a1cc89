local J = require "moonflow.json"
local H = require "helpers"

describe("json", function()
  it("round-trips nested values, keeping integers and floats apart", function()
    local v = { a = 1, b = { 1.5, 2.0, "x\n\"y\1" }, c = {}, e = true, f = -9007199254740993, g = 0.1,
      h = 1e300, s = "é😀", big = math.maxinteger }
    local s = J.encode(v)
    assert.are.equal('{"a":1,"b":[1.5,2.0,"x\\n\\"y\\u0001"],"big":9223372036854775807,"c":{},"e":true,' ..
      '"f":-9007199254740993,"g":0.1,"h":1e+300,"s":"é😀"}', s)
    local d = J.decode(s)
    assert.are.equal("integer", math.type(d.a))
    assert.are.equal("float", math.type(d.b[2]))
    assert.are.equal(-9007199254740993, d.f)
    assert.are.equal(0.1, d.g)
    assert.are.equal(1e300, d.h)
    assert.are.equal(math.maxinteger, d.big)
    assert.are.equal("x\n\"y\1", d.b[3])
    assert.are.equal("é😀", d.s)
    assert.are.equal("[]", J.encode(J.array()))
    assert.are.equal("[]", J.encode(J.decode("[]")))
  end)

  it("decodes escapes, surrogate pairs, exponents and null", function()
    local d = J.decode(' {"x": [1e3, -0.5, 0, -0, 2E-2, "\\u00e9\\ud83d\\ude00\\/", null, false]} ')
    assert.are.same({ 1000.0, -0.5, 0, 0, 0.02, "é😀/" }, { table.unpack(d.x, 1, 6) })
    assert.are.equal(J.null, d.x[7])
    assert.are.equal(false, d.x[8])
  end)

  it("rejects malformed text with the byte position", function()
    local cases = {
      { "", "unexpected end" }, { "{", "expected a string key" }, { "[1,]", "unexpected" },
      { "01", "trailing" }, { "1.", "bad number" }, { "{\"a\":1}x", "trailing" },
      { "{\"a\":1,\"a\":2}", "duplicate key" }, { '"\\ud800"', "unpaired surrogate" }, { "nul", "unexpected" },
      { "[1 2]", "expected ',' or ']'" }, { "{'a':1}", "string key" }, { "1e", "bad number" },
      { "\"a\tb\"", "control character" }, { '"abc', "unterminated" }, { '"\\x"', "bad escape" },
      { ("["):rep(300), "deeper than 200" },
    }
    for _, c in ipairs(cases) do
      H.errors(function() J.decode(c[1]) end, "invalid JSON at byte", c[2])
    end
  end)

  it("refuses values without a JSON form unless lenient", function()
    H.errors(function() J.encode({ f = print }) end, "json.encode", "function", "$.f")
    H.errors(function() J.encode({ x = 0 / 0 }) end, "json.encode", "not representable")
    local t = {}
    t.t = t
    H.errors(function() J.encode(t) end, "cycle")
    assert.are.equal('{"x":"inf"}', J.encode({ x = math.huge }, { lenient = true }))
    assert.is_not_nil(J.encode({ f = print }, { lenient = true }):find('"function: ', 1, true))
  end)
end)
