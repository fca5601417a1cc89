-- mf.distill.DMD2 against exact oracle teachers: the generator gradient is the
-- DMD formula (closed form in Lua doubles), guidance 1 is unguided, the
-- fake-score update count, the multi-step student's backward simulation, and
-- a 1-step student of a 2-D mixture within 3x the energy-distance floor.
local mf = require "moonflow"
local H = require "helpers"

local fp64 = mf.device().fp64
local DT = fp64 and "f64" or "f32"
local TOL = fp64 and 1e-10 or 2e-4

local means = { { -1.5, 0 }, { 1.5, 0.5 }, { 0, -1.5 } }
local stds = { 0.3, 0.4, 0.25 }
local weights = { 0.5, 0.3, 0.2 }
local gm = mf.oracle.GaussianMixture { means = means, stds = stds, weights = weights }
local other = { means = { { 0.5, 1 }, { -1, -1 } }, stds = { 0.6, 0.5 }, weights = { 0.4, 0.6 } }
local gm2 = mf.oracle.GaussianMixture(other)

-- E[x0 | x_t] of mixture m on x_t = (1 - t) x0 + t eps, in Lua doubles:
-- component k: x_t ~ N((1 - t) mu_k, V_k I), V_k = (1 - t)^2 s_k^2 + t^2, and
-- E[x0 | x_t, k] = mu_k + (1 - t) s_k^2 / V_k (x_t - (1 - t) mu_k); only = k keeps one component
local function posterior_mean(m, x, t, only)
  local a = 1 - t
  local logs, best = {}, -math.huge
  for k = 1, #m.means do
    if only == nil or only == k then
      local V = a * a * m.stds[k] ^ 2 + t * t
      local d2 = 0
      for i = 1, #x do d2 = d2 + (x[i] - a * m.means[k][i]) ^ 2 end
      logs[k] = math.log(m.weights[k]) - #x / 2 * math.log(V) - d2 / (2 * V)
      best = math.max(best, logs[k])
    end
  end
  local z, out = 0, {}
  for i = 1, #x do out[i] = 0 end
  for k = 1, #m.means do
    if logs[k] then
      local r = math.exp(logs[k] - best)
      z = z + r
      local V = a * a * m.stds[k] ^ 2 + t * t
      for i = 1, #x do
        out[i] = out[i] + r * (m.means[k][i] + a * m.stds[k] ^ 2 / V * (x[i] - a * m.means[k][i]))
      end
    end
  end
  for i = 1, #x do out[i] = out[i] / z end
  return out
end

local x0v = { { 0.3, -0.2 }, { -1.1, 0.4 }, { 1.7, 0.9 }, { 0.2, -1.9 } }
local tv = { 0.15, 0.4, 0.65, 0.9 }
local epsv = { { 0.5, -1.2 }, { -0.3, 0.8 }, { 1.4, 0.1 }, { -0.7, -0.6 } }
local function noised(i)
  return { (1 - tv[i]) * x0v[i][1] + tv[i] * epsv[i][1], (1 - tv[i]) * x0v[i][2] + tv[i] * epsv[i][2] }
end

local function student_stub() return function(x) return x end end

local function dmd(opts)
  local o = {
    teacher = mf.interfaces.SiT { network = gm:network("sit") },
    fake = mf.interfaces.SiT { network = gm2:network("sit") },
    student = student_stub(),
  }
  for k, v in pairs(opts or {}) do o[k] = v end
  return mf.distill.DMD2(o)
end

describe("mf.distill.DMD2", function()
  it("has a generator gradient equal to the DMD formula, (x0_fake - x0_real) / mean|x0 - x0_real| / numel", function()
    local d = dmd()
    local x0 = mf.tensor(x0v, { dtype = DT }):requires_grad()
    local loss, parts = d:dm_loss(x0, mf.tensor(tv, { dtype = DT }), mf.tensor(epsv, { dtype = DT }))
    loss:backward()
    local N = 8
    local grad, want_loss = {}, 0
    for i = 1, 4 do
      local xt = noised(i)
      local real = posterior_mean({ means = means, stds = stds, weights = weights }, xt, tv[i])
      local fake = posterior_mean(other, xt, tv[i])
      local w = 1 / ((math.abs(x0v[i][1] - real[1]) + math.abs(x0v[i][2] - real[2])) / 2 + 1e-6)
      grad[i] = {}
      for j = 1, 2 do
        local g = (fake[j] - real[j]) * w
        grad[i][j] = g / N
        want_loss = want_loss + 0.5 * g * g / N
      end
      H.close(parts.real:totable()[i], real, TOL, TOL, "x0_real row " .. i)
      H.close(parts.fake:totable()[i], fake, TOL, TOL, "x0_fake row " .. i)
    end
    H.close(x0.grad:totable(), grad, TOL, TOL, "d loss / d x0")
    H.close(loss:item(), want_loss, TOL, TOL, "surrogate loss")
  end)

  it("applies classifier-free guidance to the teacher; guidance scale 1 is unguided", function()
    local tnet = gm:network("sit")
    local d1 = dmd { teacher = mf.interfaces.SiT { network = tnet }, guidance_scale = 1 }
    local d0 = dmd { teacher = mf.interfaces.SiT { network = gm:network("sit") } }
    local y = mf.tensor({ 0, 2, 1, 0 }, { dtype = "i32" })
    local x0 = mf.tensor(x0v, { dtype = DT })
    local t, eps = mf.tensor(tv, { dtype = DT }), mf.tensor(epsv, { dtype = DT })
    local l1, p1 = d1:dm_loss(x0, t, eps, { y = y })
    local l0, p0 = d0:dm_loss(x0, t, eps, { y = y })
    assert.same(p0.real:totable(), p1.real:totable())
    assert.same(p0.grad:totable(), p1.grad:totable())
    assert.equal(l0:item(), l1:item())
    assert.equal(1, tnet.calls) -- scale 1: no unconditional pass
    -- scale 2.5: x0_c + 1.5 (x0_c - x0_null), x0_c from the labelled component
    local d2 = dmd { guidance_scale = 2.5 }
    local _, p2 = d2:dm_loss(x0, t, eps, { y = y })
    local labels = { 0, 2, 1, 0 }
    local mix = { means = means, stds = stds, weights = weights }
    for i = 1, 4 do
      local xt = noised(i)
      local c = posterior_mean(mix, xt, tv[i], labels[i] + 1)
      local u = posterior_mean(mix, xt, tv[i])
      H.close(p2.real:totable()[i], { c[1] + 1.5 * (c[1] - u[1]), c[2] + 1.5 * (c[2] - u[2]) }, TOL, TOL,
        "guided x0 row " .. i)
    end
  end)

  it("runs fake_score_updates fake-score updates per generator update", function()
    for _, k in ipairs { 0, 1, 3 } do
      local rngs = mf.Rngs(1)
      local fnet = mf.nn.VelocityMLP { dim = 2, hidden = 16, depth = 1, rngs = rngs }
      local fake = mf.interfaces.SiT { network = fnet, rngs = rngs }
      local losses = 0
      local own = fake.loss
      fake.loss = function(...) losses = losses + 1; return own(...) end
      local student = mf.nn.VelocityMLP { dim = 2, hidden = 16, depth = 1, rngs = rngs }
      local d = dmd { fake = fake, student = student, fake_score_updates = k, rngs = rngs }
      local real = gm:sample(32, rngs.data)
      for _ = 1, 2 do
        local l = d:step(real)
        assert.equal(k > 0, l.fake_score_loss ~= nil)
      end
      assert.equal(2 * k, losses)
      assert.equal(2 * k, d.fake_optimizer.step_count)
      assert.equal(2, d.optimizer.step_count)
    end
  end)

  -- A student that records every call: input, t, output (flow), whether grad recorded.
  local function recording_student(rngs)
    local net = mf.nn.VelocityMLP { dim = 2, hidden = 16, depth = 1, rngs = rngs }
    local calls = {}
    local rec = setmetatable({ dim = 2 }, { __call = function(_, x, t, cond)
      local out, f = net(x, t, cond)
      calls[#calls + 1] = { x = x:totable(), t = t:totable(), out = out:totable(), grad = mf.grad_enabled() }
      return out, f
    end })
    return rec, net, calls
  end

  it("trains a multi-step student at its own backward simulation, at the times of student_t_list", function()
    local tl = { 1.0, 0.75, 0.5, 0.25 }
    for _, mode in ipairs { "ode", "sde" } do
      local rngs = mf.Rngs(3)
      local rec, net, calls = recording_student(rngs)
      local d = dmd { student = rec, optimizer = mf.optim.AdamW(net, { lr = 1e-3 }), fake_score_updates = 0,
        student_t_list = tl, student_sample_type = mode, rngs = rngs, shape = { 2 } }
      local B = 64
      d:step(gm:sample(B, rngs.data))
      assert.equal(4, #calls)
      for k = 1, 3 do
        assert.is_false(calls[k].grad)
        for i = 1, B do assert.equal(calls[k].t[i], tl[k] + 0.0) end
      end
      assert.is_true(calls[4].grad)
      -- each row's training input is its rung's input from the simulation
      local seen = {}
      for i = 1, B do
        local t = calls[4].t[i]
        local k
        for j, v in ipairs(tl) do if (string.unpack("<f", string.pack("<f", v))) == t then k = j end end
        assert.is_not_nil(k, "t " .. t .. " is not in student_t_list")
        seen[k] = true
        assert.same(calls[k].x[i], calls[4].x[i])
      end
      assert.equal(4, #seen)
      -- rung k + 1's input is the re-noised x0 = x - t out of the student at rung k
      for k = 1, 2 do
        local t, tn = tl[k], tl[k + 1]
        local dev, m, v = 0, 0, 0
        for i = 1, B do
          for j = 1, 2 do
            local x, out, nxt = calls[k].x[i][j], calls[k].out[i][j], calls[k + 1].x[i][j]
            local x0 = x - t * out
            if mode == "ode" then
              local eps = (x - (1 - t) * x0) / t
              dev = math.max(dev, math.abs(nxt - ((1 - tn) * x0 + tn * eps)))
            else
              local eps = (nxt - (1 - tn) * x0) / tn
              m, v = m + eps, v + eps * eps
            end
          end
        end
        if mode == "ode" then
          assert.is_true(dev < 1e-5, "ode re-noising off by " .. dev)
        else
          -- fresh noise: mean 0, variance 1 over 2B draws (5 sd)
          local n = 2 * B
          m, v = m / n, v / n - (m / n) ^ 2
          assert.is_true(math.abs(m) < 5 / math.sqrt(n), "sde noise mean " .. m)
          assert.is_true(math.abs(v - 1) < 5 * math.sqrt(2 / n), "sde noise variance " .. v)
        end
      end
    end
  end)

  it("with fake_per_rung labels the fake score's inputs by the student's rung", function()
    local rngs = mf.Rngs(6)
    local rec, net, calls = recording_student(rngs)
    local fnet = mf.nn.VelocityMLP { dim = 2, hidden = 16, depth = 1, num_classes = 3, rngs = rngs }
    local labels = {}
    local wrapped = setmetatable({ num_classes = 3 }, { __call = function(_, x, t, cond)
      labels[#labels + 1] = cond.y and cond.y:totable() or false
      return fnet(x, t, cond)
    end })
    local fake = mf.interfaces.SiT { network = wrapped, rngs = rngs }
    local tl = { 1.0, 0.5, 0.25 }
    local d = dmd { student = rec, optimizer = mf.optim.AdamW(net, { lr = 1e-3 }), fake = fake,
      fake_optimizer = mf.optim.AdamW(fnet, { lr = 1e-3 }), fake_score_updates = 1, student_t_list = tl,
      fake_per_rung = true, rngs = rngs }
    d:step(gm:sample(40, rngs.data))
    -- student calls: 2 simulation rungs and the sample, for the fake update and for the generator's
    assert.equal(6, #calls)
    assert.equal(2, #labels)
    for u, c in ipairs { 3, 6 } do
      for i, t in ipairs(calls[c].t) do
        local want = t == 1 and 0 or (t == 0.5 and 1 or 2)
        assert.equal(want, labels[u][i], ("update %d row %d at t %s"):format(u, i, t))
      end
    end
    H.errors(function() dmd { fake_per_rung = true, student_t_list = tl } end, "fake_per_rung", "num_classes >= 3")
  end)

  it("draws the training rung uniformly from student_t_list", function()
    local rngs = mf.Rngs(5)
    local rec, net, calls = recording_student(rngs)
    local tl = { 1.0, 0.6, 0.3 }
    local d = dmd { student = rec, optimizer = mf.optim.AdamW(net, { lr = 1e-3 }), fake_score_updates = 0,
      student_t_list = tl, rngs = rngs }
    local counts, n = {}, 0
    local f = {}
    for j, v in ipairs(tl) do f[(string.unpack("<f", string.pack("<f", v)))] = j end
    for _ = 1, 10 do
      for k in pairs(calls) do calls[k] = nil end
      d:step(gm:sample(120, rngs.data))
      for _, t in ipairs(calls[#calls].t) do
        local j = f[t]
        counts[j] = (counts[j] or 0) + 1
        n = n + 1
      end
    end
    for j = 1, 3 do
      local e, sd = n / 3, math.sqrt(n * (1 / 3) * (2 / 3))
      assert.is_true(math.abs(counts[j] - e) < 5 * sd, ("rung %d drawn %d times of %d"):format(j, counts[j], n))
    end
  end)

  it("has the non-saturating GAN losses, stable at large logits, and trains the head with the fake score", function()
    local z = { -60, -3.5, -0.25, 0, 0.7, 4, 80 }
    local function sp(v) return math.max(v, 0) + math.log(1 + math.exp(-math.abs(v))) end
    local g, dr, df = 0, 0, 0
    for i, v in ipairs(z) do
      g = g + sp(-v) / #z
      dr = dr + sp(-v) / #z
      df = df + sp(z[#z + 1 - i]) / #z
    end
    local logits = mf.tensor(z, { dtype = DT })
    local rev = {}
    for i = 1, #z do rev[i] = z[#z + 1 - i] end
    H.close(mf.distill.gan_generator_loss(logits):item(), g, TOL, TOL, "generator loss")
    H.close(mf.distill.gan_discriminator_loss(logits, mf.tensor(rev, { dtype = DT })):item(), dr + df, TOL, TOL,
      "discriminator loss")
    local rngs = mf.Rngs(4)
    local fake = mf.interfaces.SiT { network = mf.nn.VelocityMLP { dim = 2, hidden = 16, depth = 2, rngs = rngs }, rngs = rngs }
    local student = mf.nn.VelocityMLP { dim = 2, hidden = 16, depth = 1, rngs = rngs }
    local d = dmd { fake = fake, student = student, fake_score_updates = 2, gan_loss_weight = 0.5, rngs = rngs }
    local before = d.gan_head:flat_parameters():totable()
    local l = d:step(gm:sample(32, rngs.data))
    assert.is_not_nil(l.gan_generator_loss)
    assert.is_not_nil(l.gan_discriminator_loss)
    assert.equal(2, d.gan_optimizer.step_count)
    assert.are_not.same(before, d.gan_head:flat_parameters():totable())
    -- the generator's loss is the DM loss plus 0.5 times the GAN loss
    H.close(l.loss:item(), l.dm_loss:item() + 0.5 * l.gan_generator_loss:item(), 1e-5, 1e-6, "total loss")
  end)

  it("samples from the student in 1 to #student_t_list steps", function()
    local rngs = mf.Rngs(2)
    local rec, net, calls = recording_student(rngs)
    local d = dmd { student = rec, optimizer = mf.optim.AdamW(net, { lr = 1e-3 }), student_t_list = { 1.0, 0.5 } }
    local x = d:sample(mf.Generator(0), 10, { steps = 1 })
    assert.same({ 10, 2 }, x:shape())
    assert.equal(1, #calls)
    x = d:sample(mf.Generator(0), 10)
    assert.equal(3, #calls)
    H.errors(function() d:sample(mf.Generator(0), 10, { steps = 3 }) end, "moonflow.distill.DMD2", "steps", "[1, 2]")
    H.errors(function() dmd { student_t_list = { 1.0, 1.0 } } end, "student_t_list must decrease")
    H.errors(function() dmd { fake_score_updates = -1 } end, "fake_score_updates", "-1")
    H.errors(function() dmd { teacher = 3 } end, "teacher must be an interface")
    H.errors(function() dmd { fake = false, fake_init = "x" } end, "fake")
    H.errors(function() dmd { bogus = 1 } end, "unknown option bogus")
  end)

  it("runs on labelled images with DiT student and fake score, guidance and the GAN head on tokens", function()
    local rngs = mf.Rngs(7)
    -- a 4-D mixture seen as 1x2x2 images, labels picking components
    local img = mf.oracle.GaussianMixture { means = { { 1, 0, 0, -1 }, { -1, 0.5, 0, 1 } }, stds = 0.3 }
    local function dit()
      return mf.nn.DiT { input_size = 2, patch_size = 1, in_channels = 1, hidden_size = 16, depth = 2,
        num_heads = 2, num_classes = 2, rngs = rngs }
    end
    local teacher = mf.interfaces.SiT { network = img:network("sit") }
    local student = dit()
    local d = mf.distill.DMD2 { teacher = teacher, student = student, fake = mf.interfaces.SiT { network = dit(), rngs = rngs },
      guidance_scale = 2, gan_loss_weight = 0.1, fake_score_updates = 1, student_t_list = { 1.0, 0.5 }, rngs = rngs }
    local x, y = img:sample(8, rngs.data)
    local l = d:step { x = x:reshape { 8, 1, 2, 2 }, y = y }
    for _, k in ipairs { "loss", "dm_loss", "fake_score_loss", "gan_generator_loss", "gan_discriminator_loss" } do
      local v = l[k]:item()
      assert.is_true(v == v and math.abs(v) < math.huge, k .. " = " .. v)
    end
    local s = d:sample(rngs.sample, 5, { cond = mf.tensor({ 0, 1, 1, 0, 1 }, { dtype = "i32" }) })
    assert.same({ 5, 1, 2, 2 }, s:shape())
  end)

  it("distills an exact mixture teacher into a 1-step student within 3x the energy-distance floor", function()
    local rngs = mf.Rngs(0)
    local teacher = mf.interfaces.SiT { network = gm:network("sit"), t_shift_base = 2 }
    local student = mf.nn.VelocityMLP { dim = 2, hidden = 64, depth = 3, rngs = rngs }
    local fake = mf.interfaces.SiT { network = mf.nn.VelocityMLP { dim = 2, hidden = 64, depth = 3, rngs = rngs },
      t_shift_base = 2, train_time_dist_type = "uniform", rngs = rngs }
    local steps = 400
    local d = mf.distill.DMD2 { teacher = teacher, student = student, fake = fake, rngs = rngs,
      optimizer = { lr = mf.optim.lr.cosine(1e-3, steps), betas = { 0.9, 0.999 } },
      fake_optimizer = { lr = 1e-3, betas = { 0.9, 0.999 } } }
    local ema = mf.optim.EMA(student, { decay = 0.99 })
    local data = mf.data.toy("mixture", { means = means, stds = stds, weights = weights, rngs = rngs })
    for _ = 1, steps do
      d:step((data:batch(256)))
      ema:update()
    end
    -- one set's distance scatters widely (a 1-step map puts a few points far
    -- out); the mean over 4 sets of 1000 is compared with the floor
    local n, ed = 1000, 0
    for _ = 1, 4 do
      ed = ed + mf.metrics.energy_distance(d:sample(rngs.sample, n, { network = ema.network }), (data:batch(n))) / 4
    end
    local floor = mf.metrics.energy_floor(data, n)
    assert.is_true(ed < 3 * floor, ("energy distance %.5f, floor %.5f (ratio %.2f)"):format(ed, floor, ed / floor))
  end)
end)
