-- `moonflow train` with a distill block: the checkpoint's entries, an exact
-- resume, the summary (teacher and student at each step count with sampling
-- times), a teacher trained first when its checkpoint is missing, and errors.
local P = require "app_proc"

local function write(path, text)
  local f = assert(io.open(path, "w"))
  f:write(text)
  f:close()
end

local ORACLE = [[
return {
  seed = 0, steps = 8, batch = 32, eval_n = 100, log_every = 1, checkpoint_every = 4,
  ema = { decay = 0.9 },
  distill = {
    oracle = { means = { { -1, 0 }, { 1, 0.5 } }, stds = { 0.3, 0.3 } },
    teacher_eval = { sampler = "Euler", num_sampling_steps = 8 },
    student = { init = "scratch", hidden = 16, depth = 1 },
    fake = { init = "scratch", hidden = 16, depth = 1 },
    student_t_list = { 1.0, 0.5 }, fake_score_updates = 2, gan_loss_weight = 0.1,
  },
}
]]

describe("moonflow train with distill", function()
  local dir = P.scratch("distill")
  P.run(("mkdir -p %q"):format(dir))
  teardown(function() P.run(("rm -rf %q*"):format(dir)) end)
  local cfg = dir .. "/oracle.lua"
  write(cfg, ORACLE)

  it("checkpoints student, EMA, fake score, GAN head and optimizers, and resumes exactly", function()
    local full, stopped = dir .. "/full", dir .. "/stopped"
    local out, err, code = P.moonflow(("train %s out=%s"):format(cfg, full))
    assert.are.equal(0, code, err)
    -- the summary: the teacher at its sampler, the student at 1 and 2 steps, times
    assert.truthy(out:find("teacher_euler_8steps%s+energy distance [%d.]+%s+%(floor [%d.]+, ratio [%d.]+%)%s+sampling [%d.]+ s"), out)
    assert.truthy(out:find("student_1step%s+energy distance"), out)
    assert.truthy(out:find("student_2steps%s+energy distance"), out)
    local keys
    keys, err, code = P.lua(([[
      local mf = require "moonflow"
      local _, m = mf.io.load_safetensors(%q)
      local k = {}
      for name in pairs(m) do k[#k + 1] = name end
      table.sort(k)
      io.write(table.concat(k, " "))]]):format(full .. "/checkpoint.safetensors"))
    assert.are.equal(0, code, err)
    for _, e in ipairs { "model", "ema", "optim", "fake", "fake_optim", "gan_head", "gan_optim", "rngs", "step", "config" } do
      assert.truthy((" " .. keys .. " "):find(" " .. e .. " ", 1, true), e .. " missing from: " .. keys)
    end
    -- the checkpoint rebuilds the student (its EMA) for sampling
    local drawn
    drawn, err, code = P.lua(([[
      local b = require("moonflow.app.distill").load(%q)
      local x = b.dmd:sample(require("moonflow").Generator(0), 7, { steps = 2, network = b.ema.network })
      io.write(table.concat(x:shape(), "x"), " ", tostring(b.ema.num_updates))]]):format(full .. "/checkpoint.safetensors"))
    assert.are.equal(0, code, err)
    assert.are.equal("7x2 8", drawn)
    _, err, code = P.moonflow(("train %s steps=5 out=%s"):format(cfg, stopped))
    assert.are.equal(0, code, err)
    _, err, code = P.moonflow(("train %s out=%s resume=%s/checkpoint.safetensors"):format(cfg, stopped, stopped))
    assert.are.equal(0, code, err)
    local a, b = P.log_rows(full), P.log_rows(stopped)
    assert.are.equal(8, #a)
    assert.are.equal(#a, #b)
    for i = 1, #a do
      -- step, generator loss, dm loss, fake-score loss to the digits printed
      assert.are.same({ a[i][1], a[i][2], a[i][3], a[i][4] }, { b[i][1], b[i][2], b[i][3], b[i][4] })
    end
  end)

  it("trains a missing teacher from its config first, then distills its EMA weights", function()
    local tdir = dir .. "/teacher"
    write(dir .. "/teacher.lua", [[
return { seed = 1, data = { name = "two_moons" }, network = { hidden = 16, depth = 1 },
  interface = { kind = "SiT", train_time_dist_type = "logitnormal", t_shift_base = 2 },
  steps = 20, batch = 64, evals = { { sampler = "Euler", num_sampling_steps = 6 } }, eval_n = 100, log_every = 10 }
]])
    write(dir .. "/student.lua", ([[
return { steps = 3, batch = 32, eval_n = 100, log_every = 1,
  distill = { teacher = %q, teacher_config = %q, fake_score_updates = 1 } }
]]):format(tdir .. "/checkpoint.safetensors", dir .. "/teacher.lua"))
    local out, err, code = P.moonflow(("train %s out=%s"):format(dir .. "/student.lua", dir .. "/from_teacher"))
    assert.are.equal(0, code, err)
    assert.truthy(out:find("training it first", 1, true), out)
    assert.truthy(P.exists(tdir .. "/checkpoint.safetensors"))
    assert.truthy(out:find("teacher_euler_6steps", 1, true), out)
    assert.truthy(out:find("student_1step", 1, true), out)
    -- the second time the checkpoint is there: no training
    out, err, code = P.moonflow(("train %s out=%s --overwrite"):format(dir .. "/student.lua", dir .. "/from_teacher"))
    assert.are.equal(0, code, err)
    assert.falsy(out:find("training it first", 1, true), out)
  end)

  it("names the command when the teacher checkpoint is missing, and checks the distill block", function()
    local _, err, code = P.moonflow(("train %s out=%s distill.oracle=nil distill.teacher=%s/none/checkpoint.safetensors"):format(
      cfg, dir .. "/x", dir))
    assert.are_not.equal(0, code)
    assert.truthy(err:find("teacher checkpoint", 1, true), err)
    assert.truthy(err:find("scripts/moonflow train", 1, true), err)
    _, err, code = P.moonflow(("train %s out=%s distill.student_t_list={0.5,0.7}"):format(cfg, dir .. "/y"))
    assert.are_not.equal(0, code)
    assert.truthy(err:find("distill.student_t_list must decrease", 1, true), err)
    _, err, code = P.moonflow(("train %s out=%s distill.fake_score_updates=-2"):format(cfg, dir .. "/y"))
    assert.are_not.equal(0, code)
    assert.truthy(err:find("distill.fake_score_updates", 1, true), err)
    _, err, code = P.moonflow(("train %s out=%s distill.teacher_eval=3"):format(cfg, dir .. "/y"))
    assert.are_not.equal(0, code)
    assert.truthy(err:find("distill.teacher_eval must be an eval table or a list of them, got number", 1, true), err)
    _, err, code = P.moonflow(("train %s out=%s distill.bogus=1"):format(cfg, dir .. "/y"))
    assert.are_not.equal(0, code)
    assert.truthy(err:find("unknown key bogus", 1, true), err)
    assert.falsy(P.exists(dir .. "/y/config.lua"))
  end)
end)
