-- `moonflow sample` of a distillation checkpoint: the student (EMA) at its
-- step counts, each measured as the run measures it (energy distance and
-- floor on points), the samples saved; options that do not apply refused.
local P = require "app_proc"

local ORACLE = [[
return {
  seed = 0, steps = 4, batch = 32, eval_n = 100, log_every = 1, checkpoint_every = 4,
  ema = { decay = 0.9 },
  distill = {
    oracle = { means = { { -1, 0 }, { 1, 0.5 } }, stds = { 0.3, 0.3 } },
    teacher_eval = { sampler = "Euler", num_sampling_steps = 4 },
    student = { init = "scratch", hidden = 16, depth = 1 },
    fake = { init = "scratch", hidden = 16, depth = 1 },
    student_t_list = { 1.0, 0.5 }, fake_score_updates = 1,
  },
}
]]

describe("moonflow sample of a distilled student", function()
  local dir = P.scratch("distill_sample")
  P.run(("mkdir -p %q"):format(dir))
  teardown(function() P.run(("rm -rf %q*"):format(dir)) end)
  local f = assert(io.open(dir .. "/oracle.lua", "w"))
  f:write(ORACLE)
  f:close()
  local ckpt = dir .. "/run/checkpoint.safetensors"

  it("draws at 1 and 2 steps, prints each one's energy distance and floor, and saves the samples", function()
    local _, err, code = P.moonflow(("train %s/oracle.lua out=%s/run"):format(dir, dir))
    assert.are.equal(0, code, err)
    local out
    out, err, code = P.moonflow(("sample %s --n 50 --seed 5 --save"):format(ckpt))
    assert.are.equal(0, code, err)
    local printed = {}
    for _, k in ipairs { "1step", "2steps" } do
      local e, fl, ratio = out:match("student_" .. k .. ", 50 samples: energy distance ([%d.]+) %(floor ([%d.]+), ratio ([%d.]+)%)")
      assert.truthy(e, out)
      printed[#printed + 1] = { e, fl, ratio }
      assert.truthy(out:find(("wrote %s/run/samples_student_%s.png\n"):format(dir, k), 1, true), out)
      assert.truthy(out:find(("wrote %s/run/samples_student_%s.safetensors\n"):format(dir, k), 1, true), out)
    end
    -- the saved samples are the student's (EMA) draws from seed 5's sample
    -- stream, 1 step then 2; the distances are theirs to fresh data drawn
    -- after the reference set, the floor that of 50 against 50
    local check
    check, err, code = P.lua(([[
      local mf = require "moonflow"
      local Distill = require "moonflow.app.distill"
      local b = Distill.load(%q)
      local g = mf.Rngs(5).sample
      local out = {}
      b.data:batch(50)
      for k = 1, 2 do
        local x = Distill.draw_student(b, g, 50, k, b.ema.network)
        local saved = mf.io.load_safetensors(("%s/run/samples_student_%%s.safetensors"):format(k == 1 and "1step" or "2steps"))
        local sv, xv = saved.samples:totable(), x:totable()
        assert(#sv == 50, "50 rows saved")
        for i = 1, 50 do
          assert(sv[i][1] == xv[i][1] and sv[i][2] == xv[i][2], ("saved sample %%d differs at %%d steps"):format(i, k))
        end
        local e = mf.metrics.energy_distance(saved.samples, (b.data:batch(50)))
        local fl = mf.metrics.energy_floor(b.data, 50)
        out[#out + 1] = ("%%.5f %%.5f %%.2f"):format(e, fl, e / fl)
      end
      io.write(table.concat(out, "|"))]]):format(ckpt, dir))
    assert.are.equal(0, code, err)
    assert.are.equal(check, table.concat({ table.concat(printed[1], " "), table.concat(printed[2], " ") }, "|"))
  end)

  it("--steps picks one count; --steps past the student's, --sampler and --guidance are refused", function()
    local pic = dir .. "/two.png"
    local out, err, code = P.moonflow(("sample %s --n 40 --steps 2 --out %s"):format(ckpt, pic))
    assert.are.equal(0, code, err)
    assert.truthy(out:find("^student_2steps, 40 samples: energy distance [%d.]+ %(floor [%d.]+, ratio [%d.]+%)\nwrote "
      .. pic:gsub("%p", "%%%0") .. "\n$"), out)
    assert.are.equal("\137PNG\r\n\26\n", (P.read(pic) or ""):sub(1, 8))
    _, err, code = P.moonflow(("sample %s --steps 3"):format(ckpt))
    assert.are_not.equal(0, code)
    assert.truthy(err:find("sample: --steps 3: this student samples at 1 to 2 steps (student_t_list {1.0, 0.5})", 1, true), err)
    _, err, code = P.moonflow(("sample %s --sampler heun"):format(ckpt))
    assert.are_not.equal(0, code)
    assert.truthy(err:find("sample: --sampler Heun does not apply to a distilled student", 1, true), err)
    _, err, code = P.moonflow(("sample %s --guidance 2"):format(ckpt))
    assert.are_not.equal(0, code)
    assert.truthy(err:find("sample: --guidance does not apply to a distilled student", 1, true), err)
    assert.falsy(err:find("%.lua:%d+:"), err)
  end)

  it("names the teacher checkpoint a student's network is rebuilt from when it is gone", function()
    local f2 = assert(io.open(dir .. "/teacher.lua", "w"))
    f2:write([[
return { seed = 1, data = { name = "two_moons" }, network = { hidden = 16, depth = 1 },
  interface = { kind = "SiT", train_time_dist_type = "logitnormal", t_shift_base = 2 },
  steps = 4, batch = 32, evals = { { sampler = "Euler", num_sampling_steps = 2 } }, eval_n = 50, log_every = 2 }
]])
    f2:close()
    local teacher = dir .. "/teacher/checkpoint.safetensors"
    local _, err, code = P.moonflow(("train %s/teacher.lua out=%s/teacher"):format(dir, dir))
    assert.are.equal(0, code, err)
    _, err, code = P.moonflow(("train %s/oracle.lua out=%s/student distill.oracle=nil distill.teacher_eval=nil "
      .. "distill.teacher=%s distill.student.init=teacher distill.fake.init=teacher steps=2"):format(dir, dir, teacher))
    assert.are.equal(0, code, err)
    local out
    out, err, code = P.moonflow(("sample %s/student/checkpoint.safetensors --n 30"):format(dir))
    assert.are.equal(0, code, err)
    assert.truthy(out:find("student_2steps, 30 samples: energy distance", 1, true), out)
    assert.truthy(os.rename(teacher, teacher .. ".moved"))
    _, err, code = P.moonflow(("sample %s/student/checkpoint.safetensors --n 30"):format(dir))
    assert.are_not.equal(0, code)
    assert.truthy(err:find(("moonflow.distill: %s/student/checkpoint.safetensors was distilled from %s, which is gone"):format(
      dir, teacher), 1, true), err)
  end)
end)
