-- Module names as PyTorch's: Sequential and ModuleList children are named
-- "0", "1", ... so state_dict names match a PyTorch copy of the network;
-- Lua's own indexing (m[i], m:at(i)) stays 1-based, the i-th child.
local mf = require "moonflow"
local nn = mf.nn

describe("nn names", function()
  it("Sequential and ModuleList name their children from 0, m[i] is the i-th", function()
    local g = mf.Generator(1)
    local a, b = nn.Linear(2, 3, { generator = g }), nn.Linear(3, 1, { generator = g })
    local s = nn.Sequential(a, nn.SiLU(), b)
    local names = {}
    for name in s:named_parameters() do names[#names + 1] = name end
    assert.same({ "0.weight", "0.bias", "2.weight", "2.bias" }, names)
    assert.equal(a, s[1])
    assert.equal(a, s:at(1))
    assert.equal(a, s["0"])
    assert.equal(b, s[3])
    assert.is_nil(s[4])
    local l = nn.ModuleList { a }
    l:append(b)
    assert.equal(2, #l)
    assert.equal(b, l[2])
    assert.equal(b, l["1"])
    local mods = {}
    for _, e in ipairs(l:named_modules()) do mods[#mods + 1] = e[1] end
    assert.same({ "", "0", "1" }, mods)
  end)

  it("VelocityMLP's state dict uses PyTorch's names", function()
    local net = nn.VelocityMLP { dim = 2, hidden = 8, depth = 2, num_classes = 3, use_dt = true, rngs = mf.Rngs(0) }
    local names = {}
    for name, p in net:named_parameters() do names[#names + 1] = name .. " " .. table.concat(p:shape(), "x") end
    assert.same({
      "in_proj.weight 8x2", "in_proj.bias 8",
      "t_embed.linear1.weight 8x256", "t_embed.linear1.bias 8",
      "t_embed.linear2.weight 8x8", "t_embed.linear2.bias 8",
      "y_embed.weight 4x8",
      "dt_embed.linear1.weight 8x256", "dt_embed.linear1.bias 8",
      "dt_embed.linear2.weight 8x8", "dt_embed.linear2.bias 8",
      "blocks.0.norm.weight 8", "blocks.0.norm.bias 8", "blocks.0.linear.weight 8x8", "blocks.0.linear.bias 8",
      "blocks.1.norm.weight 8", "blocks.1.norm.bias 8", "blocks.1.linear.weight 8x8", "blocks.1.linear.bias 8",
      "final_norm.weight 8", "final_norm.bias 8", "out_proj.weight 2x8", "out_proj.bias 2",
    }, names)
  end)
end)
