-- DMD2's GAN head (Yin et al. 2024, sec. 4.3): a small classifier on the fake
-- score's features of noised samples, trained with the non-saturating loss
--   discriminator: softplus(-D(real)) + softplus(D(fake)), means over the batch
--   generator:     softplus(-D(fake))
-- with softplus(x) = log(1 + e^x) = relu(x) + log(1 + e^-|x|) (no overflow).
-- Features: the network's second return value, a list by depth; the head
-- reads features[depth] (default the last), token features {B, N, H}
-- averaged over N first.
local nn = require "moonflow.nn"
local O = require "moonflow.ops"

local G = {}

function G.softplus(x)
  return x:relu() + ((x:abs() * -1):exp() + 1):log()
end

-- Head{hidden_size, depth = nil (last), rngs}: Linear(H, H), SiLU, Linear(H, 1)
local Head = nn.Module:extend("DMD2GANHead")
G.Head = Head

function Head.new(opts)
  local H = opts.hidden_size
  if math.type(H) ~= "integer" or H < 1 then
    error(("moonflow.distill.GANHead: hidden_size must be a positive integer, got %s"):format(tostring(H)), 2)
  end
  local m = nn.Module.create(Head)
  m.depth = opts.depth
  m.hidden_size = H
  m:add_module("mlp", nn.MLP { sizes = { H, H, 1 }, act = "silu", rngs = opts.rngs, dtype = opts.dtype })
  m:flatten()
  return m
end

-- logits {B} from a feature list
function Head:forward(features)
  if type(features) ~= "table" or #features == 0 then
    error("moonflow.distill.GANHead: the fake score's network returned no features (the GAN head needs them)", 2)
  end
  local f = features[self.depth or #features]
  if f == nil then
    error(("moonflow.distill.GANHead: no features at depth %s (the network gives %d)"):format(
      tostring(self.depth), #features), 2)
  end
  local s = f:shape()
  if #s == 3 then f = f:mean(2) end
  f = f:reshape { s[1], -1 }
  return self.mlp(f):reshape { s[1] }
end

-- the generator's loss: mean softplus(-D(fake))
function G.generator_loss(fake_logits) return G.softplus(O.mul(fake_logits, -1)):mean() end
-- the discriminator's loss: mean softplus(-D(real)) + mean softplus(D(fake))
function G.discriminator_loss(real_logits, fake_logits)
  return O.add(G.softplus(O.mul(real_logits, -1)):mean(), G.softplus(fake_logits):mean())
end

return G
